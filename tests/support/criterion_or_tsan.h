/* Include instead of <criterion/criterion.h> in test files that must also run
 * under ThreadSanitizer (`make tsan`, ctest label "threads").
 *
 * Criterion's runner cannot start under ThreadSanitizer: it maps its shared
 * arena at addresses TSan reserves and aborts before any test runs (Criterion
 * issue #274). Under TSan this header therefore provides a small runner with
 * the same surface the threaded tests use — Test(), TestSuite(.init, .fini)
 * and the cr_assert family — running each case in a forked child and
 * reporting failures on stderr and in the exit status. Everywhere else it is
 * plain Criterion. */
#ifndef SNAP_CRITERION_OR_TSAN_H
#define SNAP_CRITERION_OR_TSAN_H

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(UNDER_TSAN)
#define UNDER_TSAN 1
#endif

#ifndef UNDER_TSAN
#include <criterion/criterion.h>
#else
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define tsan_check(cond, ...)                                                                      \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                     \
      fprintf(stderr, "" __VA_ARGS__);                                                             \
      fputc('\n', stderr);                                                                         \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)
#define cr_assert(c, ...) tsan_check((c), __VA_ARGS__)
#define cr_assert_not(c, ...) tsan_check(!(c), __VA_ARGS__)
#define cr_assert_eq(a, b, ...) tsan_check((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) tsan_check((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) tsan_check((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) tsan_check((a) <= (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) tsan_check((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) tsan_check((a) >= (b), __VA_ARGS__)
#define cr_assert_null(a, ...) tsan_check((a) == NULL, __VA_ARGS__)
#define cr_assert_not_null(a, ...) tsan_check((a) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) tsan_check(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_fail(...) tsan_check(0, __VA_ARGS__)

typedef struct tsan_case {
  const char *name;
  void (*fn)(void);
  void (*init)(void); /* per-test .init / .fini, as Criterion's Test() takes them */
  void (*fini)(void);
} tsan_case;
static tsan_case tsan_cases[64];
static int tsan_ncases;
static struct {
  void (*init)(void);
  void (*fini)(void);
} tsan_suite;

#define TestSuite(suite, ...)                                                                      \
  __attribute__((constructor)) static void tsan_suite_##suite(void) {                              \
    struct {                                                                                       \
      void (*init)(void);                                                                          \
      void (*fini)(void);                                                                          \
    } cfg = {__VA_ARGS__};                                                                         \
    tsan_suite.init = cfg.init;                                                                    \
    tsan_suite.fini = cfg.fini;                                                                    \
  }
#define Test(suite, name, ...)                                                                     \
  static void suite##_##name(void);                                                                \
  __attribute__((constructor)) static void tsan_reg_##suite##_##name(void) {                       \
    struct {                                                                                       \
      int unused;                                                                                  \
      void (*init)(void);                                                                          \
      void (*fini)(void);                                                                          \
      double timeout; /* accepted for Criterion's syntax; ctest's TIMEOUT bounds the run */        \
    } o = {0, __VA_ARGS__};                                                                        \
    if (tsan_ncases < (int)(sizeof tsan_cases / sizeof *tsan_cases))                               \
      tsan_cases[tsan_ncases++] = (tsan_case){#suite "::" #name, suite##_##name, o.init, o.fini};  \
  }                                                                                                \
  static void suite##_##name(void)

int main(void) {
  int failed = 0;
  for (int i = 0; i < tsan_ncases; i++) {
    pid_t child = fork();
    if (child == 0) {
      if (tsan_suite.init)
        tsan_suite.init();
      if (tsan_cases[i].init)
        tsan_cases[i].init();
      tsan_cases[i].fn();
      if (tsan_cases[i].fini)
        tsan_cases[i].fini();
      if (tsan_suite.fini)
        tsan_suite.fini();
      exit(0);
    }
    int status = 1;
    if (child < 0 || waitpid(child, &status, 0) < 0)
      status = 1;
    bool ok = child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    fprintf(stderr, "[%s] %s\n", ok ? "PASS" : "FAIL", tsan_cases[i].name);
    failed += !ok;
  }
  fprintf(stderr, "%d of %d cases passed\n", tsan_ncases - failed, tsan_ncases);
  return failed || tsan_ncases == 0 ? 1 : 0;
}
#endif /* UNDER_TSAN */
#endif /* SNAP_CRITERION_OR_TSAN_H */
