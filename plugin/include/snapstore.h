/**
 * @file snapstore.h
 * @brief The umbrella header: everything a user of snapstore needs.
 *
 * Backend authors include snap/sys/backend.h instead.
 */
#ifndef SNAPSTORE_H
#define SNAPSTORE_H

#include "snap/admin.h"
#include "snap/alloc.h"
#include "snap/envelope.h"
#include "snap/error.h"
#include "snap/executor.h"
#include "snap/observe.h"
#include "snap/pipeline.h"
#include "snap/plugin.h"
#include "snap/store.h"
#include "snap/store_stream.h"
#include "snap/stream.h"
#include "snap/version.h"

#endif /* SNAPSTORE_H */
