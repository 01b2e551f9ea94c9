/* snapctl: the command table, argument parsing and help. Each command lives
 * in its own file; this one only finds it and runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapctl.h"

static const ctl_cmd commands[] = {
    {"ls", "[PID] [--json]", "list the pids, or the snapshots of one pid",
     "Without PID, lists every persistence id, one a line. With PID, lists its\n"
     "snapshots: seq, timestamp, format, state and stored sizes, stages and key\n"
     "version, read from the frame headers without decoding anything.\n"
     "  --json   one JSON array on stdout instead of a table\n"
     "Exit 1 when PID has no snapshot.",
     cmd_ls, CTL_OPEN_READ},
    {"show", "PID [SEQ] [--raw]", "print a snapshot's state as JSON",
     "Loads the newest snapshot of PID (or the one at SEQ) with the configured\n"
     "keys and prints its state as pretty JSON, whichever format it was stored in.\n"
     "  --raw    write the state's bytes unchanged instead\n"
     "Exit 1 when there is no such snapshot or it cannot be decoded.",
     cmd_show, CTL_OPEN_READ},
    {"verify", "", "decode every body with the configured keys",
     "Decodes every stored body (not only the newest of each pid) with the\n"
     "configured keys and options, and reports each failure on stdout as\n"
     "'PID SEQ KIND: detail' (KIND: corrupt, format, auth, nokey, toobig, error),\n"
     "then a summary on stderr. Exit 1 when any body fails.",
     cmd_verify, CTL_OPEN_READ},
    {"stats", "[--json]", "counts, sizes, key versions and stage sets",
     "Snapshots, pids, state and stored bytes, the compression ratio, and the\n"
     "number of bodies per key version and per stage set, from the frame headers.\n"
     "  --json   one JSON object on stdout",
     cmd_stats, CTL_OPEN_READ},
    {"rekey",
     "[--wrap-only] [--new-keys UNIT...|--new-keys --all [--after UNIT]] [--recompress] "
     "[--dry-run] [--force] [--max-failures N]",
     "re-encrypt every body not under the active key",
     "Re-encodes every body that is not authenticated the way a save would now\n"
     "write it: under another key version (re-encryption), in plaintext (first\n"
     "encryption, or the MAC when only integrity is configured). States, formats\n"
     "and timestamps are kept. Bodies are replaced in batches, each only if it is\n"
     "still the body that was read: a concurrent newer save wins, a concurrent\n"
     "delete stays deleted. Killed at any point, a new run continues: bodies\n"
     "already under the active key are skipped without decoding. Plaintext bodies\n"
     "are read only with \"accept_unauthenticated\": true in the configuration.\n"
     "  --wrap-only  envelope keys: rewrap every unit's data key under the active\n"
     "             master key instead (no body is read or written; O(units)). A\n"
     "             rerun skips what is done; then the old master key can retire\n"
     "  --new-keys UNIT... | --new-keys --all [--after UNIT]  envelope keys, for a\n"
     "             data key that may have been exposed: give each unit (every unit\n"
     "             with --all, those after UNIT with --after) a new data key,\n"
     "             rewrite its bodies under it, then delete its older keys. Every\n"
     "             body loads at every step; a rerun finishes a unit left half way\n"
     "  --recompress  also re-encode every body whose codec or dictionary is not\n"
     "             what a save writes now (e.g. after \"compression\": \"zstd\",\n"
     "             \"dictionary\": \"NAME\"); uncompressed bodies a save would leave\n"
     "             uncompressed stay as they are\n"
     "  --dry-run  count what would be rewritten, change nothing\n"
     "  --force    re-encode every body, even those already current\n"
     "  --max-failures N  stop after N bodies in a row the store failed to replace\n"
     "             (default 100, 0: never); the first 10 of them are listed.\n"
     "             Bodies that cannot be decoded are all listed and never stop it\n"
     "Exit 1 when a body could not be rewritten (reported like verify).",
     cmd_rekey, CTL_OPEN_WRITE},
    {"migrate", "--to MANIFEST [--dry-run] [--max-failures N]",
     "bring every older body to a manifest through the upcasters",
     "Re-encodes every body whose manifest is older than MANIFEST (T/n): T/m\n"
     "with m < n, or one from which the registered upcasters lead to MANIFEST.\n"
     "The state is decoded, run through the upcasters the configuration's\n"
     "\"upcasters\" library registers (as a load to MANIFEST would), and saved\n"
     "again stating MANIFEST, with the options a save uses now (the document's\n"
     "keys and compression), the old metadata, seq and timestamp. Bodies at\n"
     "MANIFEST, of other types, newer or without a manifest are left alone.\n"
     "Bodies are replaced in batches, each only if it is still the body that\n"
     "was read: a concurrent newer save wins, a concurrent delete stays deleted.\n"
     "Killed at any point, a new run continues: bodies already at MANIFEST are\n"
     "skipped without decoding. A body that cannot be migrated (it does not\n"
     "decode, a step is missing, an upcaster fails) is left unchanged and\n"
     "reported like verify reports, with the step named.\n"
     "  --to MANIFEST     the target, e.g. bank.Account/3 (required)\n"
     "  --dry-run         print MANIFEST ROWS ACTION per stored manifest (ACTION:\n"
     "                    migrate, current, newer, other; '-': no manifest) and\n"
     "                    change nothing\n"
     "  --max-failures N  stop after N bodies in a row the store failed to replace\n"
     "                    (default 100, 0: never); the first 10 of them are listed\n"
     "Exit 1 when a body could not be migrated.",
     cmd_migrate, CTL_OPEN_WRITE},
    {"copy", "--to CONFIG2 [--delete] [--decode-all] [--max-failures N]",
     "copy every snapshot to another store, then verify the copy",
     "Copies every snapshot to the store of the configuration CONFIG2 (another\n"
     "file, another backend) with its pid, seq, timestamp and body exactly as\n"
     "stored; nothing is decoded, so the target needs the same keys to read them.\n"
     "Rows already identical in the target are skipped, so an interrupted copy\n"
     "is resumed by running it again. Then every source row is compared with the\n"
     "target, and one row per pid is decoded through the target's document (its\n"
     "keys, context and switches): a row it cannot read is listed. Retention is\n"
     "not applied to the copy. Rows only in the target are kept and counted.\n"
     "  --delete          also delete the target's rows that the source does not\n"
     "                    have (the target becomes a mirror of the source)\n"
     "  --decode-all      decode every row in the target, not one per pid\n"
     "  --max-failures N  stop after N rows in a row failed to be stored (default\n"
     "                    100, 0: never); the first 10 of them are listed\n"
     "Exit 1 on any difference (with --delete, also a row only in the target), a\n"
     "row the target cannot read, or a row that could not be stored.",
     cmd_copy, CTL_OPEN_READ},
    {"export", "[--out FILE]", "write every snapshot as JSON Lines",
     "One JSON object a line: {\"pid\", \"seq\", \"timestamp\", \"format\", and\n"
     "\"state\" (the JSON state itself) or \"state_base64\" (msgpack states, and\n"
     "JSON states whose bytes are not their own compact form)}, after one line\n"
     "per trained dictionary {\"dictionary\", \"id\", \"bytes_base64\"}. States are\n"
     "decoded with the configured keys: the output holds decrypted state.\n"
     "Writes to stdout unless --out; stdout then holds records only. A body that\n"
     "cannot be decoded is reported on stderr, counted and left out (exit 1).\n"
     "  --out FILE  a new file, mode 0600, written under a temporary name in\n"
     "              its directory and named FILE only once complete",
     cmd_export, CTL_OPEN_READ},
    {"import", "[FILE] [--max-failures N]", "store the snapshots of a JSON Lines file",
     "Reads lines as written by export (FILE, or stdin) and saves each with the\n"
     "configured options, keeping pid, seq and timestamp. Every line is checked\n"
     "first; if any is bad, each bad line is reported with its number and nothing\n"
     "at all is stored (exit 2). Retention (keep) applies as to any save.\n"
     "  --max-failures N  stop after N saves in a row failed (default 100, 0:\n"
     "                    never); the first 10 of them are listed",
     cmd_import, CTL_OPEN_CREATE},
    {"backup", "FILE [--keys KEYFILE | --data-only]",
     "consistent online copy of the store to a new file",
     "Writes a consistent copy of the live store to FILE (which must not exist)\n"
     "with the backend's online backup (SQLite's backup API). Point a\n"
     "configuration's path at FILE to use it; 'verify' passes on it.\n"
     "A store whose envelope keys live in a separate key store needs one of:\n"
     "  --keys KEYFILE  also copy the key store, after the data, to KEYFILE\n"
     "                  (keep those copies short: forgetting must reach them)\n"
     "  --data-only     copy the data alone (its bodies need the live key store)",
     cmd_backup, CTL_OPEN_READ},
    {"delete", "PID [--to SEQ]", "delete the snapshots of a pid",
     "Deletes every snapshot of PID, or those with seq <= SEQ. Exit 1 when PID\n"
     "has no snapshot to delete.",
     cmd_delete, CTL_OPEN_WRITE},
    {"forget", "UNIT...", "crypto-shred units: delete their data keys and snapshots",
     "For each shred unit (a pid, or with \"envelope\": {\"unit\": \"prefix\"} the\n"
     "part of the pids before the separator), deletes its envelope data key,\n"
     "keeping a tombstone, then every snapshot of its pids. Its bodies left in\n"
     "backups of the data can no longer be read (when the key table lives in a\n"
     "separate key store). Prints 'UNIT keys N generation G pids P' per unit.\n"
     "Exit 1 when a unit could not be forgotten.",
     cmd_forget, CTL_OPEN_WRITE},
    {"dict", "train|ls|show|rm [ID|NAME] [--name N --pids GLOB] [--samples N] [--size B] [--force]",
     "the store's trained zstd dictionaries",
     "dict train --name NAME --pids GLOB [--samples N] [--size BYTES]: trains a zstd\n"
     "dictionary (at most BYTES, default 16384) on the newest snapshot of up to N\n"
     "pids matching GLOB (default 1000; decoded with the configured keys), 9 in\n"
     "10 of them; prints its id and the compression ratio (state bytes / body\n"
     "bytes) on the others with it (zstd-3), with zstd-3 alone and with zlib-6;\n"
     "then stores it as NAME. Saves use it with \"compression\": \"zstd\",\n"
     "\"dictionary\": \"NAME\" in the document's options.\n"
     "dict ls: one line per dictionary (id, name, size, stored size, stages, time).\n"
     "dict show ID|NAME: its id, size and how many snapshots use it.\n"
     "dict rm ID|NAME [--force]: removes it; refused while a snapshot uses it\n"
     "(--force removes it anyway: those snapshots can no longer be read).",
     cmd_dict, CTL_OPEN_WRITE},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void tool_help(FILE *f) {
  fprintf(f, "usage: snapctl [--config FILE] [--quiet] [--create] COMMAND [ARGS]\n\n"
             "The operator's tool of snapstore. FILE is the plugin configuration document\n"
             "(docs/PLUGIN.md); keys come from the key files it names. Only import and\n"
             "the target of copy create a store that does not exist (and any command\n"
             "given --create); the others open it as it is, read-only when they only read.\n"
             "\nCommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\nCommon options: --config FILE (or $SNAPCTL_CONFIG), --quiet (no progress),\n"
             "--create (the store may be created), --help. 'snapctl COMMAND --help'\n"
             "describes a command.\n"
             "Exit status: 0 ok; 1 a problem in the data, or the store cannot be reached\n"
             "or written at run time; 2 the command or the document is wrong (nothing\n"
             "written); 130 (143) stopped by Ctrl-C (SIGTERM).\n");
}

int main(int argc, char **argv) {
  ctl c = {0};
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      tool_help(stdout);
      return EXIT_OK;
    }
    if (strcmp(a, "--version") == 0) {
      printf("snapctl (snapstore %s)\n", snap_version());
      return EXIT_OK;
    }
    int r = ctl_common_opt(&c, argc, argv, &i);
    if (r < 0)
      return -r - 1;
    if (r == 0)
      break;
  }
  if (i >= argc) {
    tool_help(stderr);
    return EXIT_USAGE;
  }
  for (size_t k = 0; k < NCOMMANDS; k++)
    if (strcmp(argv[i], commands[k].name) == 0)
      c.cmd = &commands[k];
  if (c.cmd == NULL) {
    if (argv[i][0] == '-')
      return ctl_usage(&c, "unknown option '%s'", argv[i]);
    return ctl_usage(&c, "unknown command '%s'", argv[i]);
  }
  if (c.config_path == NULL)
    c.config_path = getenv("SNAPCTL_CONFIG");
  ctl_interrupt_install();
  int rc = c.cmd->run(&c, argc - i, argv + i);
  ctl_close(&c);
  if (fflush(stdout) != 0 && rc == EXIT_OK)
    rc = ctl_fail(EXIT_FOUND, "cannot write the output");
  return rc;
}
