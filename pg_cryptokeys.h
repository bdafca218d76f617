/*
 * pg_cryptokeys.h
 *	  The on-disk format of an encrypted PostgreSQL cluster, and the public
 *	  API of libpgcrypttools.
 *
 * The first half of this file encodes ../shared/FORMAT.md ("the format")
 * item by item; section numbers in comments refer to it.  The second half
 * is the library API.  Every public symbol starts with pct_ / PCT_.
 *
 * The library never prints and never exits: functions return a pct_rc and
 * report messages through the callback installed with pct_set_log().
 */
#ifndef PG_CRYPTOKEYS_H
#define PG_CRYPTOKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PCT_VERSION_STR "0.1.0"

/* ====================================================================
 * Part 1: the format
 * ==================================================================== */

/* ---- Section 1: the key directory $PGDATA/pg_cryptokeys ---- */

/* Key directory, relative to PGDATA. */
#define PCT_KEYDIR			"pg_cryptokeys"
/* Sub-directory holding the keys in use. */
#define PCT_KEYDIR_LIVE		"live"
/* Sub-directory of the new keys, present only during a KEK change. */
#define PCT_KEYDIR_NEW		"new"
/* Sub-directory of the old keys, present only during a KEK change. */
#define PCT_KEYDIR_OLD		"old"
/* Lock file in the key directory: decimal PID of the holder and "\n".  A
 * patched server refuses to start while it, new/ or old/ exists. */
#define PCT_LOCK_FILE		"pg_alterckey.pid"

/* Data key identifiers: relation key 0, WAL key 1. */
#define PCT_KEY_RELATION	0
#define PCT_KEY_WAL			1
/* Number of data keys a cluster has. */
#define PCT_NUM_KEYS		2

/* Directory modes follow PGDATA (0700, or 0750 with group access); key
 * files 0600 (or 0640). */
#define PCT_DIR_MODE		0700
#define PCT_DIR_MODE_GROUP	0750
#define PCT_FILE_MODE		0600
#define PCT_FILE_MODE_GROUP 0640

/* ---- Section 1.1: the cluster key (KEK) ---- */

/* The KEK is 32 bytes (AES-256), printed by cluster_key_command as 64
 * hexadecimal characters on the first line of its output. */
#define PCT_KEK_LEN			32
#define PCT_KEK_HEX_LEN		(2 * PCT_KEK_LEN)
/* Shell the command is run through (as popen() does). */
#define PCT_KEYCMD_SHELL	"/bin/sh"
/* Substitutions: %d key directory being read (absolute), %p prompt,
 * %R terminal file descriptor (only with -R/--authprompt), %% a literal %;
 * any other %x is kept as it is. */
#define PCT_KEYCMD_DEFAULT_PROMPT "Enter cluster key passphrase:"

/* ---- Key file plaintext, shared by both generations ---- */

/* The wrapped plaintext is 36 bytes: a length (i32 LE) and 32 key bytes. */
#define PCT_KEY_PLAIN_LEN	36
/* Offset and size of the length field in the plaintext. */
#define PCT_KEY_PLAIN_LEN_OFF 0
/* Offset of the 32 key bytes in the plaintext. */
#define PCT_KEY_PLAIN_KEY_OFF 4
/* The largest data key, in bytes (AES-256). */
#define PCT_MAX_KEY_LEN		32

/* ---- Section 1.2: generation 1 ("2020") key file, 72 bytes ---- */

/* Generation numbers. */
#define PCT_GEN1			1
#define PCT_GEN2			2

/* Key files are named by the decimal key id: "0" relation, "1" WAL. */
#define PCT_GEN1_FILE_RELATION "0"
#define PCT_GEN1_FILE_WAL	"1"
/* Size of the file; shorter is damaged, bytes past it are ignored. */
#define PCT_GEN1_FILE_LEN	72
/* Key id, u64 LE: 0 relation, 1 WAL (also IV bytes 0..7). */
#define PCT_GEN1_OFF_ID		0
/* Counter, u64 LE: +1 at every wrap, 1 after cluster creation (also IV
 * bytes 8..15). */
#define PCT_GEN1_OFF_COUNTER 8
/* The IV of AES-256-GCM: the 16 bytes at offsets 0..15, as stored. */
#define PCT_GEN1_IV_LEN		16
/* GCM tag, 16 bytes; no AAD. */
#define PCT_GEN1_OFF_TAG	16
#define PCT_GEN1_TAG_LEN	16
/* Ciphertext of the 36-byte plaintext. */
#define PCT_GEN1_OFF_CIPHER 32
/* 4 bytes of padding: not authenticated, ignored by readers, written as
 * zeros. */
#define PCT_GEN1_OFF_PAD	68
#define PCT_GEN1_PAD_LEN	4

/* ---- Section 1.3: generation 2 ("2022") key file, 48 bytes ---- */

/* File names of the relation and WAL keys. */
#define PCT_GEN2_FILE_RELATION "relation.wkey"
#define PCT_GEN2_FILE_WAL	"wal.wkey"
/* RFC 5649 AES-256 key wrap with padding of the 36-byte plaintext (length
 * in BYTES, unused key bytes zero); exactly 48 bytes, nothing else. */
#define PCT_GEN2_FILE_LEN	48

/* ---- Section 2: pg_control ---- */

/* pg_control is 8192 bytes, relative path in PGDATA. */
#define PCT_CONTROL_FILE	"global/pg_control"
#define PCT_CONTROL_FILE_SIZE 8192
/* Stock PostgreSQL 13 to 16. */
#define PCT_CONTROL_VERSION_STOCK 1300
/* The patched server: one u32 inserted after mock_authentication_nonce. */
#define PCT_CONTROL_VERSION_ENCRYPTED 1400

/* Offsets of ControlFileData fields on 64-bit platforms (identical in both
 * versions up to PCT_CTL_OFF_NONCE). A unit test checks them with
 * offsetof() against the server headers. */
#define PCT_CTL_OFF_SYSID		0	/* u64 system_identifier */
#define PCT_CTL_OFF_VERSION		8	/* u32 pg_control_version */
#define PCT_CTL_OFF_CATVERSION	12	/* u32 catalog_version_no */
#define PCT_CTL_OFF_STATE		16	/* i32 DBState */
#define PCT_CTL_OFF_TIME		24	/* i64 time of last update */
#define PCT_CTL_OFF_CHECKPOINT	32	/* u64 last checkpoint location */
#define PCT_CTL_OFF_CKPT_REDO	40	/* u64 checkPointCopy.redo */
#define PCT_CTL_OFF_CKPT_TLI	48	/* u32 checkPointCopy.ThisTimeLineID */
#define PCT_CTL_OFF_UNLOGGED_LSN 128 /* u64 unloggedLSN (rule 3.1) */
#define PCT_CTL_OFF_MIN_RECOVERY 136 /* u64 minRecoveryPoint */
#define PCT_CTL_OFF_WAL_LEVEL	172 /* i32 wal_level */
#define PCT_CTL_OFF_WAL_LOG_HINTS 176 /* bool wal_log_hints */
#define PCT_CTL_OFF_BLCKSZ		216 /* u32 blcksz */
#define PCT_CTL_OFF_RELSEG_SIZE 220 /* u32 relseg_size (blocks) */
#define PCT_CTL_OFF_XLOG_BLCKSZ 224 /* u32 xlog_blcksz */
#define PCT_CTL_OFF_XLOG_SEG_SIZE 228 /* u32 xlog_seg_size (bytes) */
#define PCT_CTL_OFF_CHECKSUM_VERSION 252 /* u32 data_checksum_version */
#define PCT_CTL_OFF_NONCE		256 /* char mock_authentication_nonce[32] */
#define PCT_CTL_NONCE_LEN		32
/* Version 1300: the CRC-32C follows the nonce. */
#define PCT_CTL_OFF_CRC_1300	288
/* Version 1400: file_encryption_method / file_encryption_keylen (u32)... */
#define PCT_CTL_OFF_ENCRYPTION	288
/* ... and the CRC-32C moves to 292.  In 1300, bytes 292..295 are padding:
 * must be zero to convert, zeroed on the way back. */
#define PCT_CTL_OFF_CRC_1400	292
/* The CRC covers every byte before it. */

/* DBState values (catalog/pg_control.h). */
#define PCT_DB_STARTUP			0
#define PCT_DB_SHUTDOWNED		1
#define PCT_DB_SHUTDOWNED_IN_RECOVERY 2
#define PCT_DB_SHUTDOWNING		3
#define PCT_DB_IN_CRASH_RECOVERY 4
#define PCT_DB_IN_ARCHIVE_RECOVERY 5
#define PCT_DB_IN_PRODUCTION	6

/* wal_level values. */
#define PCT_WAL_LEVEL_MINIMAL	0
#define PCT_WAL_LEVEL_REPLICA	1
#define PCT_WAL_LEVEL_LOGICAL	2

/* Generation 2 file_encryption_method values. */
#define PCT_METHOD_NONE		0
#define PCT_METHOD_AES128	1
#define PCT_METHOD_AES192	2
#define PCT_METHOD_AES256	3

/* The only block sizes supported (read from pg_control, others refused). */
#define PCT_BLCKSZ			8192
#define PCT_XLOG_BLCKSZ		8192

/* ---- Section 3: relation pages (generation 2) ---- */

/* Page bytes 0..15 (pd_lsn, pd_checksum, pd_flags, pd_lower, pd_upper)
 * stay clear; 16..8191 are AES-CTR encrypted with the relation key. */
#define PCT_PAGE_CLEAR_LEN	16
/* Offsets in the page header. pd_lsn is two u32 LE words, high first. */
#define PCT_PAGE_OFF_LSN	0
#define PCT_PAGE_OFF_CHECKSUM 8
#define PCT_PAGE_OFF_FLAGS	10
#define PCT_PAGE_OFF_LOWER	12
#define PCT_PAGE_OFF_UPPER	14
/* IV: bytes 0..7 pd_lsn as stored, 8..11 block number in the fork (u32
 * LE; segment S block i is S*relseg_size+i), byte 12 this flag for an
 * unlogged relation, 13..15 zero. The counter is the whole IV as a 128-bit
 * big-endian integer, +1 per 16-byte block. */
#define PCT_PAGE_IV_OFF_BLOCK 8
#define PCT_PAGE_IV_OFF_FLAGS 12
#define PCT_PAGE_IV_UNLOGGED 0x80
/* Rule 3.1: fake LSNs of unlogged relations start at max(unloggedLSN,
 * this); smaller values are reserved by the server. */
#define PCT_UNLOGGED_LSN_MIN 1000

/* ---- Section 4: WAL segments (generation 2) ---- */

/* Page header sizes kept clear: the long header (XLP_LONG_HEADER set in
 * xlp_info, first page of a segment) and the short one. */
#define PCT_WAL_LONG_HEADER_LEN 40
#define PCT_WAL_SHORT_HEADER_LEN 24
#define PCT_WAL_XLP_LONG_HEADER 0x0002
/* Offsets in the page header: u16 xlp_magic, u16 xlp_info, u32 xlp_tli,
 * u64 xlp_pageaddr. */
#define PCT_WAL_OFF_MAGIC	0
#define PCT_WAL_OFF_INFO	2
#define PCT_WAL_OFF_TLI		4
#define PCT_WAL_OFF_PAGEADDR 8
/* xlp_magic of PostgreSQL 15. */
#define PCT_WAL_MAGIC_PG15	0xD110
/* IV: bytes 0..7 xlp_pageaddr big-endian, 8..11 xlp_tli big-endian,
 * 12..15 zero; keystream block k covers page bytes 16k..16k+15. */

/* ---- Section 5: journal ---- */

/* Sector size that the journal recognises as old, new or torn. */
#define PCT_SECTOR_SIZE		4096

/* ====================================================================
 * Part 2: the library API
 * ==================================================================== */

/* ---- Results, messages ---- */

typedef enum pct_rc
{
	PCT_OK = 0,
	PCT_ERR_SYS,				/* a system call failed (errno reported) */
	PCT_ERR_ARG,				/* bad argument or usage */
	PCT_ERR_FORMAT,				/* a file is damaged or not of the format */
	PCT_ERR_KEY,				/* unwrap failed: wrong KEK or damaged key file */
	PCT_ERR_COMMAND,			/* cluster_key_command failed */
	PCT_ERR_STATE,				/* the cluster is not in a usable state */
	PCT_ERR_BUSY,				/* another tool holds the cluster */
	PCT_ERR_NOMEM,				/* out of memory */
	PCT_ERR_INJECTED,			/* stopped by the fault-injection hook */
	PCT_ERR_STOPPED				/* stopped on request at a safe point */
} pct_rc;

typedef enum pct_level
{
	PCT_LOG_DEBUG = 0,
	PCT_LOG_INFO,
	PCT_LOG_WARNING,
	PCT_LOG_ERROR
} pct_level;

/*
 * Log callback.  msg is one line, lower case, no trailing period; detail
 * and hint are NULL or one more line each.  Must be thread-safe.
 */
typedef void (*pct_log_fn) (void *arg, pct_level level, const char *msg,
							const char *detail, const char *hint);

/* Install the log callback (NULL: discard messages). */
void		pct_set_log(pct_log_fn fn, void *arg);

/* Text of a result code, e.g. "wrong cluster key or damaged key file". */
const char *pct_rc_str(pct_rc rc);

/* ---- Secrets (secmem.c) ---- */

/*
 * Memory for keys: page-aligned, mlock()ed when the limit allows, excluded
 * from core dumps, zeroed on free.  Returns NULL on failure.
 */
void	   *pct_secure_alloc(size_t len);
void		pct_secure_free(void *p, size_t len);
/* Wipe every live secure allocation (for atexit(); memory stays mapped). */
void		pct_secure_wipe_all(void);
/* Zero memory in a way the compiler cannot drop. */
void		pct_wipe(void *p, size_t len);
/* Constant-time comparison: true when equal. */
bool		pct_ct_equal(const void *a, const void *b, size_t len);
/* Disable core dumps for this process (RLIMIT_CORE 0, PR_SET_DUMPABLE). */
pct_rc		pct_disable_core_dumps(void);

/* ---- Durability (durable.c) ---- */

/*
 * Turn fsync off (-N/--no-sync, tests only) or on.  Default on.
 */
void		pct_set_sync(bool on);

/* fsync a file or directory by name.  A failed fsync is fatal to the
 * operation and is never retried. */
pct_rc		pct_fsync_path(const char *path, bool is_dir);
/* fsync the directory that contains path. */
pct_rc		pct_fsync_parent(const char *path);

/*
 * Write a new file durably: temp file in the same directory (O_EXCL,
 * O_NOFOLLOW), write, fsync, close, rename over path, fsync the directory.
 */
pct_rc		pct_durable_write(const char *path, const void *data, size_t len,
							  mode_t mode);
/* rename() made durable: fsync the file, rename, fsync both directories. */
pct_rc		pct_durable_rename(const char *oldpath, const char *newpath);
/* Remove a file or an empty directory, then fsync its parent. */
pct_rc		pct_durable_remove(const char *path);
/* Remove a directory tree (no symlinks followed), then fsync its parent. */
pct_rc		pct_durable_rmtree(const char *path);
/* mkdir + fsync of the parent. */
pct_rc		pct_durable_mkdir(const char *path, mode_t mode);

/* Read a whole small file (at most maxlen bytes; longer is an error). */
pct_rc		pct_read_file(const char *path, void *buf, size_t maxlen,
						  size_t *len);

/*
 * Fault injection for tests: every durable step of an operation calls
 * pct_durable_step().  When the environment variable PCT_FAULT_STEP is N,
 * the Nth step is completed and then the process stops with _exit(75),
 * as if killed at that moment.  With PCT_FAULT_LIST set, each step's name
 * is written to stderr ("fault step N: name").  PCT_STEP_DELAY_MS=M
 * sleeps M ms after each step, so that kill -9 tests can land between
 * steps.  PCT_BATCH_KB=K makes the bulk engine's batches K KiB (more
 * durable steps on small test clusters); PCT_TEST_FREE_BYTES=N makes
 * pg_encrypt_cluster see N bytes free for its journal.  Test hooks only;
 * documented as such.  Returns the step number.
 */
int			pct_durable_step(const char *name);
/* Exit status of a process stopped by the fault-injection hook. */
#define PCT_FAULT_EXIT		75

/* ---- The cluster key command (keycmd.c) ---- */

typedef struct pct_keycmd
{
	const char *command;		/* cluster_key_command */
	const char *keydir;			/* %d: absolute path of the key directory */
	const char *prompt;			/* %p: NULL for the default */
	int			terminal_fd;	/* %R: open on the terminal, or -1 */
	int			timeout_secs;	/* kill the command after this; 0: never */
} pct_keycmd;

/*
 * Expand the substitutions of FORMAT 1.1 into a new string (malloc).
 * Fails with PCT_ERR_ARG for %R when terminal_fd < 0.
 */
pct_rc		pct_keycmd_expand(const pct_keycmd *kc, char **out);

/*
 * Run the command through /bin/sh and parse the KEK it prints into kek
 * (which should be secure memory).  Errors (PCT_ERR_COMMAND) name the
 * command's exit status but never its output; kek is wiped on failure.
 * Output beyond 64 KiB is an error.  Bad arguments give PCT_ERR_ARG.  With
 * a time-out, the command runs in its own process group (killed as a
 * whole) unless the tool is in the foreground of its terminal, where a
 * background group could not prompt; then only the shell is killed.
 */
pct_rc		pct_keycmd_run(const pct_keycmd *kc, uint8_t kek[PCT_KEK_LEN]);

/* Parse 64 hex digits (case-insensitive, surrounding whitespace and a
 * trailing CR/LF ignored) of a command's first line into a KEK. */
pct_rc		pct_kek_parse(const char *text, size_t len,
						  uint8_t kek[PCT_KEK_LEN]);

/* ---- Key files (keyfile.c) ---- */

/* One unwrapped data key with everything needed to rewrap it exactly. */
typedef struct pct_datakey
{
	int			generation;		/* PCT_GEN1 or PCT_GEN2 */
	int			id;				/* PCT_KEY_RELATION or PCT_KEY_WAL */
	uint64_t	counter;		/* generation 1: counter as stored */
	int			keylen;			/* key length in bytes: 16, 24 or 32 */
	uint8_t		plain[PCT_KEY_PLAIN_LEN];	/* plaintext, kept exactly */
} pct_datakey;

/* The data key bytes (the first keylen bytes of the key field). */
#define PCT_DATAKEY_BYTES(dk) ((dk)->plain + PCT_KEY_PLAIN_KEY_OFF)

/*
 * Unwrap a key file's contents; name (the file's path, or NULL) is used in
 * messages.  Generation 1: len >= 72, the key id in the file must equal id.
 * Generation 2: len == 48.  PCT_ERR_KEY when the integrity check fails
 * (wrong KEK or damaged file), PCT_ERR_FORMAT when the file is malformed.
 */
pct_rc		pct_keyfile_unwrap(const char *name, int generation, int id,
							   const uint8_t *file, size_t len,
							   const uint8_t kek[PCT_KEK_LEN],
							   pct_datakey *dk);

/*
 * Wrap a data key.  Generation 1 uses dk->counter as given, so a rewrap
 * passes the stored counter + 1 (pct_keydir_write does); padding is zeroed.
 * out must hold PCT_GEN1_FILE_LEN bytes; *outlen is set.
 */
pct_rc		pct_keyfile_wrap(const pct_datakey *dk,
							 const uint8_t kek[PCT_KEK_LEN], uint8_t *out,
							 size_t *outlen);

/* Make a new generation 2 data key of keylen bytes from OpenSSL's CSPRNG. */
pct_rc		pct_datakey_generate(int id, int keylen, pct_datakey *dk);

/* File name of a key in a generation ("0", "wal.wkey", ...). */
const char *pct_keyfile_name(int generation, int id);

/* ---- The key directory (keydir.c) ---- */

/* The two data keys of a cluster. Allocate in secure memory. */
typedef struct pct_keyset
{
	int			generation;
	int			keylen;			/* bytes, equal for both keys */
	pct_datakey key[PCT_NUM_KEYS];
} pct_keyset;

/* State bits of pg_cryptokeys: which of live/, new/, old/ exist. */
#define PCT_KD_LIVE			0x1
#define PCT_KD_NEW			0x2
#define PCT_KD_OLD			0x4

/* Which sub-directories exist (0 when pg_cryptokeys itself is missing;
 * *exists tells that case apart). */
pct_rc		pct_keydir_state(const char *pgdata, unsigned *state, bool *exists);

/* Textual form of a state, e.g. "live and new". */
const char *pct_keydir_state_str(unsigned state);

/* A finding of a key directory check; see pct_keydir_check(). */
typedef void (*pct_finding_fn) (void *arg, const char *path,
								const char *what);

/*
 * Inspect a key sub-directory (live/, new/...) without the KEK: generation,
 * file types and modes, symlinks, ownership (owner_uid), duplicates and
 * missing keys (FORMAT 1.4).  Each problem is passed to finding (when not
 * NULL) and counted in *problems.  *generation is set when it can be told
 * (0 otherwise).
 */
pct_rc		pct_keydir_check(const char *dir, uid_t owner_uid,
							 int *generation, pct_finding_fn finding,
							 void *arg, int *problems);

/*
 * Read and unwrap both keys of a key sub-directory (e.g.
 * $PGDATA/pg_cryptokeys/live) after pct_keydir_check().  expect_keylen is
 * the key length in bytes pg_control requires, or 0 to skip that check.
 */
pct_rc		pct_keydir_read(const char *dir, uid_t owner_uid,
							const uint8_t kek[PCT_KEK_LEN], int expect_keylen,
							pct_keyset *ks);

/*
 * Write both keys of ks, wrapped with kek, into the existing directory dir
 * (generation 1 keys are rewrapped with counter + 1).  Regular files of
 * copy_extras_from (a directory, or NULL) that are not key files, and that
 * dir does not already hold (a key command may have written them), are
 * copied too.  Durable: files and dir fsynced, then one durable step.
 */
pct_rc		pct_keydir_write(const char *dir, const pct_keyset *ks,
							 const uint8_t kek[PCT_KEK_LEN], mode_t filemode,
							 const char *copy_extras_from);

/* Action the repair table chose. */
typedef enum pct_repair
{
	PCT_REPAIR_NONE,			/* live only: nothing to do */
	PCT_REPAIR_REMOVED_NEW,		/* live+new: new removed */
	PCT_REPAIR_INSTALLED_NEW,	/* new+old: new renamed to live (old then
								 * removed) */
	PCT_REPAIR_REMOVED_OLD		/* live+old: old removed */
} pct_repair;

/*
 * Apply the repair table to a leftover state, durably.  Any state not in
 * the table fails with PCT_ERR_STATE and changes nothing.  The caller
 * holds the lock.
 */
pct_rc		pct_keydir_repair(const char *pgdata, pct_repair *done);

/* Human text of a repair action. */
const char *pct_repair_str(pct_repair r);

/*
 * Install new/ as live/: rename live to old, new to live, remove old; each
 * step durable (fault-injection steps).  The caller holds the lock.
 */
pct_rc		pct_keydir_swap(const char *pgdata);

/* ---- The lock file (lock.c) ---- */

typedef struct pct_lock
{
	int			fd;				/* open and locked (OFD lock) while held */
	char	   *path;
} pct_lock;

/* What is known of a lock file. */
typedef enum pct_lock_status
{
	PCT_LOCK_FREE,				/* no lock file */
	PCT_LOCK_HELD,				/* held by a running process */
	PCT_LOCK_STALE				/* left by a process that is gone */
} pct_lock_status;

/*
 * Take the lock: create pg_cryptokeys/pg_alterckey.pid holding our PID,
 * durably.  A lock file held by a running process fails with PCT_ERR_BUSY
 * (its PID in *other_pid).  A stale one (its process gone) is taken over
 * when take_stale is true, and *other_pid names the dead process;
 * otherwise PCT_ERR_STATE.  The holder keeps an open file description
 * lock on the file; a lock file is stale when no process holds that lock
 * AND the PID it names is not running (a live PID without the lock may be
 * a tool that does not take OFD locks: held).  A lock file without a PID
 * is never taken over.
 */
pct_rc		pct_lock_acquire(const char *pgdata, bool take_stale,
							 pct_lock *lock, pid_t *other_pid);
/* Remove the lock file durably and release it. */
pct_rc		pct_lock_release(pct_lock *lock);
/* Inspect without taking anything (for pg_verify_cryptokeys). */
pct_rc		pct_lock_inspect(const char *pgdata, pct_lock_status *st,
							 pid_t *pid);

/* ---- pg_control (control.c) ---- */

typedef struct pct_control
{
	uint8_t		raw[PCT_CONTROL_FILE_SIZE];	/* the file as read */
	uint32_t	version;		/* 1300 or 1400 */
	uint64_t	system_identifier;
	uint32_t	catalog_version;
	int32_t		state;			/* PCT_DB_* */
	int32_t		wal_level;		/* PCT_WAL_LEVEL_* */
	uint32_t	blcksz;
	uint32_t	relseg_size;
	uint32_t	xlog_blcksz;
	uint32_t	xlog_seg_size;
	uint32_t	data_checksum_version;	/* 0: checksums off */
	uint64_t	unlogged_lsn;
	uint32_t	encryption;		/* 1400 only: method or key length field */
} pct_control;

/* CRC-32C (Castagnoli), as PostgreSQL computes it: init, update, final. */
uint32_t	pct_crc32c(uint32_t crc, const void *data, size_t len);
#define PCT_CRC32C_INIT		0xFFFFFFFFu
#define PCT_CRC32C_FINAL(c) ((c) ^ 0xFFFFFFFFu)

/*
 * Read and check $PGDATA/global/pg_control: size (8192), version (1300 or
 * 1400; others refused naming the version found), CRC, block sizes (8192,
 * else refused), relseg_size (non-zero) and xlog_seg_size (a power of two
 * from 1 MB to 1 GB).  PCT_ERR_FORMAT when a check fails; ctl is filled
 * only on success.
 */
pct_rc		pct_control_read(const char *pgdata, pct_control *ctl);
/* Parse control data from memory (same checks). */
pct_rc		pct_control_parse(const uint8_t *buf, size_t len,
							  pct_control *ctl);
/*
 * Convert in memory 1300 -> 1400 with the given field value (a method 1..3
 * or a key length in bits 128/192/256, else PCT_ERR_ARG; bytes 292..295
 * must be zero, else PCT_ERR_FORMAT), or 1400 -> 1300 (288..295 zeroed,
 * then the CRC at 288); the CRC is recomputed and every other byte kept.
 * From the wrong version: PCT_ERR_STATE.  Like the functions below, they
 * refuse (PCT_ERR_FORMAT) raw bytes that no longer pass the checks above,
 * so that a change never gives altered bytes a valid CRC.
 */
pct_rc		pct_control_to_1400(pct_control *ctl, uint32_t encryption);
pct_rc		pct_control_to_1300(pct_control *ctl);
/* Store unloggedLSN into raw and recompute the CRC. */
pct_rc		pct_control_set_unlogged_lsn(pct_control *ctl, uint64_t lsn);
/* Write ctl->raw back durably, keeping the file's mode; one durable step
 * (pct_durable_step) after the file is durable. */
pct_rc		pct_control_write(const char *pgdata, const pct_control *ctl);
/* Text of a DBState, as pg_controldata prints it. */
const char *pct_dbstate_str(int32_t state);
/* Key length in bytes the control data requires for a generation
 * (method 1..3 or keylen in bits), or 0 when the field is invalid. */
int			pct_control_keylen(const pct_control *ctl, int generation);

/* ---- The cluster (cluster.c) ---- */

/* Outcome of asking whether a server is running. */
typedef enum pct_server
{
	PCT_SERVER_STOPPED,
	PCT_SERVER_RUNNING
} pct_server;

/*
 * Check that pgdata is a data directory: it exists, is a directory with
 * mode 0700 or 0750, and PG_VERSION holds a supported major version.
 * *major receives it (e.g. 15).
 */
pct_rc		pct_cluster_check_dir(const char *pgdata, int *major);

/*
 * Is a server running on pgdata?  RUNNING when postmaster.pid names a live
 * process (or one we may not signal) or a server answers on the socket
 * directory (else listen address) and port it records (libpq ping);
 * STOPPED when there is no postmaster.pid.  One that cannot be read
 * (PCT_ERR_SYS) or parsed (PCT_ERR_STATE, "invalid data in PID file") is
 * an error, never STOPPED.  *pid (may be NULL) receives the PID that
 * postmaster.pid names, live or not (else 0).
 */
pct_rc		pct_cluster_server(const char *pgdata, pct_server *srv,
							   pid_t *pid);

/* The owner of the data directory, which must own the key files. */
pct_rc		pct_cluster_owner(const char *pgdata, uid_t *uid);

/* Directory and file modes to use, following PGDATA's group access. */
pct_rc		pct_cluster_modes(const char *pgdata, mode_t *dirmode,
							  mode_t *filemode);

/* ---- Configuration (config.c) ---- */

/*
 * Find the value of a setting as the server would: postgresql.conf then
 * postgresql.auto.conf, include / include_if_exists / include_dir
 * honoured, last setting wins, quoting and escapes decoded.  *value is
 * NULL when not set; otherwise malloc'd, like *file (the absolute path of
 * the file that sets it) and *line (its line number).
 */
pct_rc		pct_config_get(const char *pgdata, const char *name, char **value,
						   char **file, int *line);

/*
 * Set name = value in the file that defines it (the last setting that
 * wins), or append it to postgresql.conf when it is not set anywhere.
 * With value NULL, remove every line that sets it in every file.  Each
 * changed file is rewritten durably.
 */
pct_rc		pct_config_set(const char *pgdata, const char *name,
						   const char *value);

/* Quote a value for a configuration file: '...' with ' and \ doubled and
 * newline/CR written as \n and \r, so the server reads back the same bytes. */
char	   *pct_config_quote(const char *value);

/* ---- Relation pages (pagecipher.c, checksum.c): FORMAT section 3 ---- */

/* AES-CTR context for one data key; one per thread. */
typedef struct pct_cipher pct_cipher;

/* A CTR cipher for a key of keylen bytes (16, 24, 32). */
pct_rc		pct_cipher_new(const uint8_t *key, int keylen, pct_cipher **out);
/* Free it and wipe its key schedule. */
void		pct_cipher_free(pct_cipher *c);
/*
 * XOR len bytes at data with the CTR keystream that starts at counter iv
 * (16 bytes, a 128-bit big-endian integer incremented per 16-byte block).
 * Encryption and decryption are the same operation.
 */
pct_rc		pct_cipher_ctr(pct_cipher *c, const uint8_t iv[16], uint8_t *data,
						   size_t len);

/* pd_lsn as a 64-bit value (high word first on the page, each LE). */
uint64_t	pct_page_get_lsn(const uint8_t *page);
void		pct_page_set_lsn(uint8_t *page, uint64_t lsn);
/* A new page (pd_upper == 0): never transformed. */
bool		pct_page_is_new(const uint8_t *page);
/* Build the IV of FORMAT 3 from the page's stored pd_lsn bytes. */
void		pct_page_iv(const uint8_t *page, uint32_t blkno, bool unlogged,
						uint8_t iv[16]);
/*
 * Encrypt or decrypt bytes 16..8191 of a page in place (CTR: the same
 * operation).  blkno is the block number within the fork.  New pages are
 * left alone.  Checksums are not touched; see pct_page_checksum.
 */
pct_rc		pct_page_crypt(pct_cipher *c, uint8_t *page, uint32_t blkno,
						   bool unlogged);
/* PostgreSQL's page checksum (storage/checksum_impl.h) of a page as it
 * is, for block number blkno within the fork.  On return the page is
 * unchanged, but during the call pd_checksum is transiently zero (as in
 * PostgreSQL): the page must be writable memory that no other thread reads
 * meanwhile.  Pages not 4-byte aligned are hashed in an aligned copy. */
uint16_t	pct_page_checksum(const uint8_t *page, uint32_t blkno);
/* pd_checksum as stored / store one. */
uint16_t	pct_page_get_checksum(const uint8_t *page);
void		pct_page_set_checksum(uint8_t *page, uint16_t sum);

/* ---- WAL pages (walcipher.c): FORMAT section 4 ---- */

/* xlp_magic (XLOG_PAGE_MAGIC) of a PostgreSQL major version, 13 to 16;
 * 0 for any other. */
uint16_t	pct_wal_magic(int major);
/* Is this 8192-byte WAL page in use (xlp_magic equals magic)? */
bool		pct_wal_page_in_use(const uint8_t *page, uint16_t magic);
/* Length of the page header kept clear: 40 (XLP_LONG_HEADER) or 24. */
int			pct_wal_header_len(const uint8_t *page);
/* IV of FORMAT 4: xlp_pageaddr BE, xlp_tli BE, four zero bytes. */
void		pct_wal_iv(const uint8_t *page, uint8_t iv[16]);
/*
 * Encrypt or decrypt one WAL page in place if it is in use (*in_use tells);
 * the header stays clear, keystream block k covers bytes 16k..16k+15.
 */
pct_rc		pct_wal_crypt_page(pct_cipher *c, uint8_t *page, uint16_t magic,
							   bool *in_use);

/* ---- The file map (filemap.c): which files an operation rewrites ---- */

/* Longest path the library builds (PostgreSQL's MAXPGPATH). */
#define PCT_MAXPATH 1024

typedef enum pct_file_kind
{
	PCT_FILE_RELATION,			/* main fork segment: FORMAT 3 */
	PCT_FILE_WAL				/* WAL segment or .partial: FORMAT 4 */
} pct_file_kind;

/*
 * One file, in 32 bytes: a cluster can have millions, and the whole map is
 * in memory while a bulk operation runs.  The path is not stored: it is
 * the directory's (fm->dirs[dir]) and a name rebuilt from the numbers
 * (pct_file_path).
 */
typedef struct pct_file
{
	uint64_t	size;			/* bytes */
	uint32_t	dir;			/* index into the map's dirs */
	union
	{
		struct					/* relations */
		{
			uint32_t	tablespace; /* tablespace OID: 1663 (pg_default) for
									 * base/, 1664 (pg_global) for global/,
									 * the pg_tblspc entry's name for the
									 * others */
			uint32_t	database;	/* database OID; 0 for global/ */
			uint32_t	relfilenode;
			uint32_t	segno;	/* .N suffix; 0 for none */
		};
		uint32_t	wal_name[3];	/* WAL: the name's timeline, log and
									 * segment numbers (8 hex digits each) */
	};
	uint8_t		kind;			/* pct_file_kind */
	bool		unlogged;		/* relation has an _init fork */
	bool		partial;		/* WAL: a .partial segment */
} pct_file;

typedef struct pct_filemap
{
	pct_file   *files;			/* relations sorted by (tablespace,
								 * database, relfilenode, segno), then WAL
								 * sorted by name */
	size_t		nfiles;
	char	  **dirs;			/* absolute, tablespaces resolved */
	size_t		ndirs;
	uint64_t	relation_bytes;
	uint64_t	wal_bytes;
} pct_filemap;

/*
 * Find every file of FORMAT 3 and 4 in pgdata: main forks of permanent and
 * unlogged relations (N and N.S) in global/, base/DB/ and this cluster's
 * directory under each pg_tblspc link (PG_<major>_<catversion>/DB/; other
 * PG_* directories there are skipped), and WAL segments of pg_wal (24
 * upper-case hex digits, and .partial).  Skipped: other forks, temporary
 * relations, every other name.  Only the pg_tblspc entries and pg_wal
 * itself may be symbolic links; paths are absolute with links resolved.
 * Refuses with PCT_ERR_STATE, naming the first few files of each kind:
 * hard-linked files (st_nlink > 1), symbolic links and other non-regular
 * files with such names, relation files that are not whole blocks or are
 * longer than a segment, WAL segments not exactly xlog_seg_size, .partial
 * files not whole WAL pages or longer than a segment, a tablespace without
 * this cluster's directory, and a directory reached twice.  major is
 * PG_VERSION's, ctl gives catversion and sizes.  On failure *fm is empty.
 */
pct_rc		pct_filemap_build(const char *pgdata, int major,
							  const pct_control *ctl, pct_filemap *fm);
void		pct_filemap_free(pct_filemap *fm);
/* The absolute path of a file of the map, in buf (PCT_MAXPATH bytes);
 * returns buf. */
const char *pct_file_path(const pct_filemap *fm, const pct_file *f,
						  char *buf);

/* ---- The operation journal (journal.c): FORMAT section 5 ---- */

/* Journal file in the key directory. */
#define PCT_JOURNAL_FILE	"operation.journal"

typedef enum pct_op
{
	PCT_OP_ENCRYPT = 1,			/* plain -> encrypted */
	PCT_OP_DECRYPT = 2,			/* encrypted -> plain */
	PCT_OP_REKEY = 3			/* encrypted -> encrypted under new keys */
} pct_op;

typedef enum pct_resilience
{
	PCT_RESILIENCE_CHECKSUM = 1,	/* old/new hash of every 4 KiB sector */
	PCT_RESILIENCE_JOURNAL = 2	/* old contents copied to the journal */
} pct_resilience;

/* Text of an operation ("encryption") and the command that resumes it. */
const char *pct_op_str(pct_op op);
const char *pct_op_command(pct_op op);

/* What the journal says of an operation (a copy of its newest header). */
typedef struct pct_journal_info
{
	pct_op		op;
	pct_resilience mode;
	uint32_t	method;			/* FORMAT 2 method of the encrypted side */
	uint8_t		old_id[32];		/* identities of the keys (zero: plain) */
	uint8_t		new_id[32];
	uint8_t		fingerprint[32];	/* of the file map */
	uint64_t	total_bytes;
	uint64_t	unlogged_base;	/* first fake LSN of unlogged relations */
	uint64_t	unlogged_next;	/* one past the last one used */
	uint64_t	done_file;		/* everything before (file, offset) done */
	uint64_t	done_offset;
	uint64_t	done_bytes;
	bool		data_complete;	/* every hotzone durable */
} pct_journal_info;

/* Does pgdata have a journal (an unfinished bulk operation)? */
pct_rc		pct_journal_exists(const char *pgdata, bool *exists);
/* Read the newest valid header of the journal. */
pct_rc		pct_journal_peek(const char *pgdata, pct_journal_info *info);

/* Identity of a data key: SHA-256 of a label and the key (not secret). */
void		pct_key_identity(const pct_datakey *dk, uint8_t id[32]);

/* ---- The bulk engine (engine.c) ---- */

typedef struct pct_progress
{
	uint64_t	done_bytes;
	uint64_t	total_bytes;
	double		elapsed;		/* seconds since the start of this run */
} pct_progress;

/* Called after every durable batch; return false to stop at this safe
 * point (the operation then resumes on the next run). */
typedef bool (*pct_progress_fn) (void *arg, const pct_progress *p);

typedef struct pct_engine_opts
{
	pct_op		op;
	pct_resilience mode;
	int			jobs;			/* worker threads, >= 1 */
	/* keys: relation and WAL, input side (NULL for plain) and output side
	 * (NULL for plain) */
	const pct_datakey *in_rel,
			   *in_wal,
			   *out_rel,
			   *out_wal;
	uint32_t	method;			/* recorded in the journal */
	uint16_t	wal_magic;		/* xlp_magic of this server version */
	pct_progress_fn progress;
	void	   *progress_arg;
	/* Only plan and create (or check) the journal, then return: the
	 * caller makes the cluster unstartable before the first data byte. */
	bool		prepare_only;
} pct_engine_opts;

typedef struct pct_engine_result
{
	uint64_t	pages_rewritten;	/* relation pages transformed */
	uint64_t	wal_pages_rewritten;
	uint64_t	lsns_replaced;	/* rule 3.1 */
	uint64_t	checksum_failures;	/* pages whose checksum failed before */
	uint64_t	torn_sectors;	/* found on resume, checksum mode */
	uint64_t	unlogged_next;	/* pg_control unloggedLSN to store */
} pct_engine_result;

/*
 * Space the journal needs on the key directory's file system, in bytes.
 */
uint64_t	pct_engine_journal_space(pct_resilience mode);

/*
 * Rewrite every file of fm in place (FORMAT 3, 4, 5), crash-safe.  Creates
 * the journal, or resumes the one that exists (which must describe the
 * same operation, keys and file map).  Decryption without input keys (a
 * generation 1 cluster, whose server never encrypted data) and rotation
 * of a key to itself rewrite nothing.  Returns when every hotzone is
 * durable and the journal says so; the caller then finishes (keys,
 * pg_control) and removes the journal with pct_journal_remove().
 */
pct_rc		pct_engine_run(const char *pgdata, const pct_control *ctl,
						   const pct_filemap *fm, const pct_engine_opts *o,
						   pct_engine_result *res);

/* Remove the journal durably (after the operation is finished). */
pct_rc		pct_journal_remove(const char *pgdata);

#endif							/* PG_CRYPTOKEYS_H */
