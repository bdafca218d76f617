/*
 * unit.h
 *	  Helpers shared by the Check unit suites (tests/unit/check_*.c).
 *
 * Owns: temporary directories, copying key-directory vectors into a fake
 * data directory, capturing the library's messages, small file helpers.
 * Every suite is one executable whose main() is UNIT_MAIN(suite_fn).
 */
#ifndef UNIT_H
#define UNIT_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pg_cryptokeys.h"

/* Directory of the key vectors (env VECTORS, else tests/vectors). */
const char *unit_vectors(void);
/* Top of the source tree (env TOP, else "."). */
const char *unit_top(void);

/* A new empty directory under $TMPDIR (malloc'd path); mode 0700. */
char	   *unit_mkdtemp(void);
/* rm -rf (never follows symlinks). */
void		unit_rmtree(const char *path);

/*
 * Copy vector set `name` (e.g. "b_aes128", "negative/b_bitflip") into
 * pgdata/pg_cryptokeys with modes 0700/0600; pgdata is created if needed.
 */
void		unit_copy_vector(const char *name, const char *pgdata);
/* Parse the kek_hex of a vector set into kek; ck_assert on failure. */
void		unit_vector_kek(const char *name, uint8_t kek[PCT_KEK_LEN]);
/* Parse the dek_hex of key `id` of a vector set into dek; returns its
 * length in bytes. */
int			unit_vector_dek(const char *name, int id, uint8_t *dek);

/* Write/read a whole file; ck_assert on failure. */
void		unit_write_file(const char *path, const void *data, size_t len,
							mode_t mode);
size_t		unit_read_file(const char *path, void *buf, size_t max);
/* Hex string to bytes; returns length or -1. */
int			unit_unhex(const char *hex, uint8_t *out, size_t max);

/*
 * Capture library messages: after unit_capture_log(), every message is
 * kept (the last error text via unit_last_error(), all text joined by
 * unit_all_log()).  unit_capture_log() also clears what was kept.
 */
void		unit_capture_log(void);
const char *unit_last_error(void);
const char *unit_all_log(void);

/* Run one suite; returns the exit status for main(). */
int			unit_run(Suite *s);
#define UNIT_MAIN(suite_fn) \
	int main(void) { return unit_run(suite_fn()); }

#endif							/* UNIT_H */
