// The C++ header alone gives the headers' version: a program that includes
// only <snap/snapstore.hpp> can compare it with snap_version().
#include <snap/snapstore.hpp>

const char *consumer_headers_version() { return SNAPSTORE_VERSION_STRING; }
