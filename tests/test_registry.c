/* The backend registry: register, find, list, unregister, validation of names
 * and tables, and concurrent use from several threads. */
#include "criterion_or_tsan.h" /* plain Criterion, or its own runner under TSan */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "snap/plugin.h"
#include "snap/sys/backend.h"

static int fake_open(void **self, const char *config_json, const snap_host *host) {
  (void)config_json;
  (void)host;
  *self = NULL;
  return SNAP_OK;
}
static void fake_close(void *self) { (void)self; }
static int fake_put(void *self, snap_backend_row *rows, size_t n, uint32_t keep) {
  (void)self;
  (void)keep;
  for (size_t i = 0; i < n; i++)
    rows[i].status = SNAP_OK;
  return SNAP_OK;
}
static int fake_load(void *self, const char *pid, const snap_criteria *c, snap_backend_emit emit,
                     void *ctx) {
  (void)self;
  (void)pid;
  (void)c;
  (void)emit;
  (void)ctx;
  return SNAP_OK;
}
static int fake_remove(void *self, const char *pid, const snap_criteria *c) {
  (void)self;
  (void)pid;
  (void)c;
  return SNAP_OK;
}

static snap_backend fake(const char *name) {
  snap_backend b;
  snap_backend_init(&b);
  b.name = name;
  b.capabilities = SNAP_CAP_BATCH;
  b.open = fake_open;
  b.close = fake_close;
  b.put = fake_put;
  b.load = fake_load;
  b.remove = fake_remove;
  return b;
}

static bool listed(const char *name) {
  char **names;
  size_t n;
  cr_assert_eq(snap_registry_list(&names, &n), SNAP_OK);
  bool found = false;
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0)
      found = true;
  cr_assert_null(names[n], "the list is NULL-terminated");
  snap_registry_list_free(names);
  return found;
}

Test(registry, builtin_backends_are_registered_on_first_use) {
  const snap_backend *b;
  cr_assert_eq(snap_registry_find("memory", &b), SNAP_OK, "%s", snap_error_message());
  cr_assert_str_eq(b->name, "memory");
  cr_assert_eq(snap_registry_find("sqlite", &b), SNAP_OK, "%s", snap_error_message());
  cr_assert_str_eq(b->name, "sqlite");
  cr_assert(listed("memory") && listed("sqlite"));
}

Test(registry, registers_finds_lists_and_unregisters) {
  char name[32] = "fake-one";
  snap_backend b = fake(name);
  cr_assert_eq(snap_registry_register(&b), SNAP_OK, "%s", snap_error_message());
  /* The registry copied the table: changing the caller's copy changes nothing. */
  strcpy(name, "scribbled");
  b.put = NULL;
  const snap_backend *found;
  cr_assert_eq(snap_registry_find("fake-one", &found), SNAP_OK);
  cr_assert_str_eq(found->name, "fake-one");
  cr_assert_eq(found->put, fake_put);
  cr_assert_eq(found->capabilities, SNAP_CAP_BATCH);
  cr_assert(listed("fake-one"));

  cr_assert_eq(snap_registry_unregister("fake-one"), SNAP_OK);
  cr_assert_eq(snap_registry_find("fake-one", &found), SNAP_ENOTFOUND);
  cr_assert(strstr(snap_error_message(), "fake-one"), "message names the backend: %s",
            snap_error_message());
  cr_assert_not(listed("fake-one"));
  cr_assert_eq(snap_registry_unregister("fake-one"), SNAP_ENOTFOUND);
  /* Once unregistered, the name can be taken again. */
  snap_backend again = fake("fake-one");
  cr_assert_eq(snap_registry_register(&again), SNAP_OK);
  cr_assert_eq(snap_registry_unregister("fake-one"), SNAP_OK);
}

Test(registry, refuses_a_duplicate_name_naming_it) {
  snap_backend b = fake("fake-dup");
  cr_assert_eq(snap_registry_register(&b), SNAP_OK);
  cr_assert_eq(snap_registry_register(&b), SNAP_EINVAL);
  cr_assert(strstr(snap_error_message(), "fake-dup"), "%s", snap_error_message());
  snap_backend builtin = fake("sqlite");
  cr_assert_eq(snap_registry_register(&builtin), SNAP_EINVAL, "a built-in name is taken too");
  cr_assert_eq(snap_registry_unregister("fake-dup"), SNAP_OK);
}

Test(registry, refuses_bad_names) {
  const char *bad[] = {"", "has space", "slash/name", "semi;colon", "ünïcode", NULL};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snap_backend b = fake(bad[i]);
    cr_assert_eq(snap_registry_register(&b), SNAP_EINVAL, "name '%s' refused",
                 bad[i] ? bad[i] : "(null)");
  }
  char longname[66];
  memset(longname, 'a', 65);
  longname[65] = '\0';
  snap_backend b = fake(longname);
  cr_assert_eq(snap_registry_register(&b), SNAP_EINVAL, "65 characters is one too many");
  longname[64] = '\0';
  b = fake(longname);
  cr_assert_eq(snap_registry_register(&b), SNAP_OK, "64 characters are fine: %s",
               snap_error_message());
  cr_assert_eq(snap_registry_unregister(longname), SNAP_OK);
  b = fake("Ok_name-1.2");
  cr_assert_eq(snap_registry_register(&b), SNAP_OK);
  cr_assert_eq(snap_registry_unregister("Ok_name-1.2"), SNAP_OK);
}

Test(registry, refuses_a_table_without_a_required_operation) {
  const char *ops[] = {"open", "close", "put", "load", "remove"};
  for (int i = 0; i < 5; i++) {
    snap_backend b = fake("fake-holes");
    switch (i) {
    case 0:
      b.open = NULL;
      break;
    case 1:
      b.close = NULL;
      break;
    case 2:
      b.put = NULL;
      break;
    case 3:
      b.load = NULL;
      break;
    default:
      b.remove = NULL;
      break;
    }
    cr_assert_eq(snap_registry_register(&b), SNAP_EINVAL);
    cr_assert(strstr(snap_error_message(), ops[i]), "message names %s: %s", ops[i],
              snap_error_message());
  }
  cr_assert_not(listed("fake-holes"));
  cr_assert_eq(snap_registry_register(NULL), SNAP_EINVAL);
}

Test(registry, refuses_an_unknown_abi_version_giving_both_versions) {
  snap_backend b = fake("fake-abi");
  b.abi_version = 99;
  cr_assert_eq(snap_registry_register(&b), SNAP_EABI);
  cr_assert(strstr(snap_error_message(), "99"), "%s", snap_error_message());
  char mine[16];
  snprintf(mine, sizeof mine, "%u", (unsigned)SNAP_BACKEND_ABI_VERSION);
  cr_assert(strstr(snap_error_message(), mine), "%s", snap_error_message());
  b.abi_version = 0;
  cr_assert_eq(snap_registry_register(&b), SNAP_EABI);
  cr_assert_not(listed("fake-abi"));
}

Test(registry, opens_a_store_by_name_and_refuses_unknown_names) {
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "memory", NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_str_eq(snap_store_backend_name(st), "memory");
  snap_store_close(st);
  cr_assert_eq(snap_store_open(&st, "no-such-backend", NULL), SNAP_ENOTFOUND);
  cr_assert_null(st);
  cr_assert(strstr(snap_error_message(), "no-such-backend"), "%s", snap_error_message());
}

Test(registry, a_store_outlives_the_unregistering_of_its_backend) {
  snap_backend b = fake("fake-gone");
  cr_assert_eq(snap_registry_register(&b), SNAP_OK);
  snap_store *st;
  cr_assert_eq(snap_store_open(&st, "fake-gone", NULL), SNAP_OK, "%s", snap_error_message());
  cr_assert_eq(snap_registry_unregister("fake-gone"), SNAP_OK);
  cr_assert_str_eq(snap_store_backend_name(st), "fake-gone");
  cr_assert_eq(snap_save(st, "p", 1, SNAP_FORMAT_JSON, "{}", 2, NULL, NULL), SNAP_OK, "%s",
               snap_error_message());
  snap_store_close(st);
}

#define THREADS 8
#define ROUNDS 50

static void *churn(void *arg) {
  int id = (int)(intptr_t)arg;
  char name[32];
  for (int r = 0; r < ROUNDS; r++) {
    snprintf(name, sizeof name, "t%d-r%d", id, r);
    snap_backend b = fake(name);
    if (snap_registry_register(&b) != SNAP_OK)
      return (void *)1;
    const snap_backend *found;
    if (snap_registry_find(name, &found) != SNAP_OK || strcmp(found->name, name) != 0)
      return (void *)2;
    if (snap_registry_find("memory", &found) != SNAP_OK)
      return (void *)3;
    /* Everyone races for one shared name: exactly one registration may win per round. */
    snap_backend shared = fake("contended");
    if (snap_registry_register(&shared) == SNAP_OK) {
      if (snap_registry_unregister("contended") != SNAP_OK)
        return (void *)4;
    }
    if (r % 2 && snap_registry_unregister(name) != SNAP_OK)
      return (void *)5;
  }
  return NULL;
}

Test(registry, survives_concurrent_register_find_and_unregister) {
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i), 0);
  for (int i = 0; i < THREADS; i++) {
    void *res;
    pthread_join(t[i], &res);
    cr_assert_null(res, "thread %d failed at step %d", i, (int)(intptr_t)res);
  }
  char **names;
  size_t n;
  cr_assert_eq(snap_registry_list(&names, &n), SNAP_OK);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    if (names[i][0] == 't' && strstr(names[i], "-r"))
      kept++;
  snap_registry_list_free(names);
  cr_assert_eq(kept, THREADS * ROUNDS / 2, "the even rounds stay registered");
  cr_assert_not(listed("contended"));
}
