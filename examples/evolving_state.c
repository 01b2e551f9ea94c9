/*
 * evolving_state: a state type that changed twice, read back in its newest
 * shape.
 *
 *   evolving_state DIR
 *
 * Version 1 of bank.Account was {"owner": "...", "balance": <cents>}.
 * Version 2 renamed "owner" to "holder". Version 3 turned the integer cents
 * into a decimal string, "amount": "12.05". Snapshots of all three versions
 * are saved into a sqlite store in DIR, each with its manifest
 * (bank.Account/1, /2, /3). Today's code knows only version 3: it registers
 * the two upcasters and loads every snapshot with snap_load_as(), which runs
 * the steps a body needs (two, one or none). The output shows each stored
 * manifest, the state as stored and the state as loaded; the program fails
 * unless every loaded state is the version-3 shape with the right values.
 * docs/STORE.md ("Manifests and metadata", "Upcasters") explains the API;
 * `snapctl migrate` rewrites the stored bodies to the newest shape for good.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapstore.h"

/* Reads a JSON object state; NULL with the error set when it is not one. */
static cJSON *parse_state(const uint8_t *state, size_t len) {
  cJSON *j = cJSON_ParseWithLength((const char *)state, len);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    snap_error_set(SNAP_EFORMAT, "the state is not a JSON object");
    return NULL;
  }
  return j;
}

/* Writes `j` (consumed) into `out` as compact JSON. */
static int emit(cJSON *j, snap_buf *out, snap_format *out_fmt) {
  char *text = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  if (text == NULL)
    return snap_error_set(SNAP_ENOMEM, "out of memory");
  int rc = snap_buf_set(out, text, strlen(text));
  free(text);
  *out_fmt = SNAP_FORMAT_JSON;
  return rc;
}

/* bank.Account/1 -> /2: "owner" is now "holder". */
static int owner_to_holder(void *ud, const char *from, const char *to, snap_format fmt,
                           const uint8_t *state, size_t len, snap_buf *out, snap_format *out_fmt) {
  (void)ud, (void)from, (void)to, (void)fmt;
  cJSON *j = parse_state(state, len);
  cJSON *owner = j ? cJSON_DetachItemFromObjectCaseSensitive(j, "owner") : NULL;
  if (!cJSON_IsString(owner)) {
    cJSON_Delete(owner);
    cJSON_Delete(j);
    return snap_error_set(SNAP_EFORMAT, "a version-1 account without an owner");
  }
  cJSON_AddItemToObject(j, "holder", owner);
  return emit(j, out, out_fmt);
}

/* bank.Account/2 -> /3: integer cents become a decimal string "amount". */
static int cents_to_amount(void *ud, const char *from, const char *to, snap_format fmt,
                           const uint8_t *state, size_t len, snap_buf *out, snap_format *out_fmt) {
  (void)ud, (void)from, (void)to, (void)fmt;
  cJSON *j = parse_state(state, len);
  cJSON *cents = j ? cJSON_DetachItemFromObjectCaseSensitive(j, "balance") : NULL;
  if (!cJSON_IsNumber(cents) || cents->valuedouble < 0) {
    cJSON_Delete(cents);
    cJSON_Delete(j);
    return snap_error_set(SNAP_EFORMAT, "a version-2 account without a balance in cents");
  }
  long long c = (long long)cents->valuedouble;
  char amount[32];
  snprintf(amount, sizeof amount, "%lld.%02lld", c / 100, c % 100);
  cJSON_Delete(cents);
  cJSON_AddStringToObject(j, "amount", amount);
  return emit(j, out, out_fmt);
}

typedef struct saved {
  const char *pid, *manifest, *state;
  const char *holder, *amount; /* what version 3 must say */
} saved;

static const saved SAVED[] = {
    {"account-1", "bank.Account/1", "{\"owner\":\"Ada\",\"balance\":1205}", "Ada", "12.05"},
    {"account-2", "bank.Account/2", "{\"holder\":\"Alan\",\"balance\":700}", "Alan", "7.00"},
    {"account-3", "bank.Account/3", "{\"holder\":\"Grace\",\"amount\":\"99.99\"}", "Grace",
     "99.99"},
};
#define NSAVED (sizeof SAVED / sizeof SAVED[0])

static int fail(const char *what, int rc) {
  fprintf(stderr, "evolving_state: %s: %s: %s\n", what, snap_strerror(rc), snap_error_message());
  return 1;
}

/* Whether `s` is the version-3 shape of `want`. */
static int is_v3(const snap_snapshot *s, const saved *want) {
  cJSON *j = cJSON_ParseWithLength((const char *)s->data, s->len);
  const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "holder");
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "amount");
  int ok = cJSON_IsString(h) && strcmp(h->valuestring, want->holder) == 0 && cJSON_IsString(a) &&
           strcmp(a->valuestring, want->amount) == 0 &&
           !cJSON_HasObjectItem(j, "owner") && !cJSON_HasObjectItem(j, "balance");
  cJSON_Delete(j);
  return ok;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: evolving_state DIR\n");
    return 2;
  }
  char conf[4200];
  snprintf(conf, sizeof conf, "{\"path\": \"%s/evolving.db\", \"keep\": 0}", argv[1]);
  snap_store *st = NULL;
  int rc = snap_store_open(&st, "sqlite", conf);
  if (rc != SNAP_OK)
    return fail("open", rc);
  /* Yesterday's code saved these, each stating its own version. */
  for (size_t i = 0; i < NSAVED && rc == SNAP_OK; i++) {
    snap_save_req req = {SAVED[i].pid, 1, SNAP_TIMESTAMP_AUTO, SNAP_FORMAT_JSON,
                         SAVED[i].state, strlen(SAVED[i].state), NULL};
    snap_save_ext ext;
    memset(&ext, 0, sizeof ext);
    ext.manifest = SAVED[i].manifest;
    rc = snap_save_ex(st, &req, &ext, NULL);
  }
  if (rc != SNAP_OK || (rc = snap_store_add_upcaster(st, "bank.Account/1", "bank.Account/2",
                                                      owner_to_holder, NULL)) != SNAP_OK ||
      (rc = snap_store_add_upcaster(st, "bank.Account/2", "bank.Account/3", cents_to_amount,
                                    NULL)) != SNAP_OK) {
    snap_store_close(st);
    return fail("save or register", rc);
  }
  /* Today's code asks for version 3 of every account. */
  int bad = 0;
  printf("%-10s %-15s %-40s %s\n", "PID", "STORED AS", "STORED STATE", "LOADED AS bank.Account/3");
  for (size_t i = 0; i < NSAVED; i++) {
    snap_snapshot *s = NULL;
    snap_criteria newest = SNAP_CRITERIA_LATEST;
    rc = snap_load_as(st, SAVED[i].pid, &newest, "bank.Account/3", NULL, &s);
    if (rc != SNAP_OK || s == NULL) {
      bad += fail(SAVED[i].pid, rc != SNAP_OK ? rc : SNAP_ENOTFOUND);
      continue;
    }
    printf("%-10s %-15s %-40s %.*s\n", SAVED[i].pid, s->stored_manifest, SAVED[i].state,
           (int)s->len, (const char *)s->data);
    if (!is_v3(s, &SAVED[i]) || strcmp(s->stored_manifest, SAVED[i].manifest) != 0) {
      fprintf(stderr, "evolving_state: %s did not load as the version-3 account\n", SAVED[i].pid);
      bad++;
    }
    snap_snapshot_free(s);
  }
  snap_store_close(st);
  if (bad == 0)
    printf("every account loaded in its version-3 shape\n");
  return bad ? 1 : 0;
}
