/*
 * pct_preload.h
 *	  Declarations shared by the units of the test preload library
 *	  (tests/preload/pct_preload.so); not installed, not a public API.
 *
 * The library has three units:
 *	- pct_preload.c: the interposed libc calls, the table of tracked file
 *	  descriptors and the page transforms (the data path);
 *	- pct_keys.c: whether this process is a PostgreSQL server, and the
 *	  activation: pg_control, the key directory, cluster_key_command, the
 *	  data keys, the state shared by the server's processes;
 *	- pct_pgserver.c: everything that needs PostgreSQL's server headers
 *	  (the server's exported globals, reached with dlsym(), and the
 *	  cluster_key_command setting).  It is the only unit compiled with
 *	  them.
 * See README.md in this directory for the design.
 */
#ifndef PCT_PRELOAD_H
#define PCT_PRELOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pg_cryptokeys.h"

/* What the library does in this process. */
typedef enum pp_mode
{
	PP_OFF = 0,					/* not a PostgreSQL server: pass everything */
	PP_SERVER,					/* a server; cluster not looked at yet */
	PP_PLAIN,					/* a server on a plain cluster: pass */
	PP_ACTIVE					/* a server on an encrypted cluster */
} pp_mode;

extern pp_mode pp_state;

/* Set while the library itself does I/O (activation): every interposed
 * call then goes straight to libc. */
extern int	pp_busy;

/* Conversions of relations that gain an _init fork (see pct_preload.c)
 * may run in several processes at once; this many at a time. */
#define PP_MAX_CONV 32

/*
 * State shared by every process of one server: an anonymous shared
 * mapping made by the process that activates the library (the
 * postmaster), inherited by the processes it forks.
 */
typedef struct pp_shared
{
	/* Incremented around every creation of an _init fork. */
	_Atomic uint64_t gen;
	/* Number of conversions registered in conv[]. */
	_Atomic uint32_t nconv;
	struct
	{
		_Atomic int pid;		/* 0: free */
		_Atomic uint64_t relhash;	/* relation being converted */
	}			conv[PP_MAX_CONV];
} pp_shared;

/* Everything the data path needs once the library is active. */
typedef struct pp_cluster
{
	pct_cipher *rel;			/* relation key, AES-CTR */
	pct_cipher *wal;			/* WAL key, AES-CTR */
	uint32_t	relseg_size;	/* blocks per relation segment */
	uint32_t	xlog_seg_size;
	uint32_t	method;			/* pg_control's file_encryption_method */
	bool		checksums;		/* data checksums enabled */
	uint16_t	wal_magic;		/* xlp_magic of this server version */
	char		tsdir[64];		/* PG_<major>_<catversion> */
	pp_shared  *shared;
} pp_cluster;

extern pp_cluster pp_cl;

/*
 * The mark of a base backup taken through the preload, in bytes 292..295
 * of a version 1300 pg_control (padding there): u32 LE, "PCT" and the
 * method.  A preload convention, not FORMAT: see control_read() in
 * pct_preload.c.  pp_backup_mark() returns the method, or 0.
 */
#define PP_BACKUP_MARK(method)	(0x50435400u | (uint32_t) (method))
uint32_t	pp_backup_mark(const uint8_t *control);

/* ---- pct_keys.c ---- */

/* Decide PP_OFF or PP_SERVER (constructor). */
void		pp_detect_server(void);
/* Look at the cluster: PP_PLAIN or PP_ACTIVE, or refuse to start. */
void		pp_activate(void);

/* Report a message on stderr: "pct_preload: LEVEL:  text". */
void		pp_log(const char *level, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
/* Report and abort the process: a data file was about to be handled in a
 * way the library cannot make correct. */
void		pp_die(const char *fmt,...)
			__attribute__((format(printf, 1, 2), noreturn));

#include "pct_pgserver.h"

#endif							/* PCT_PRELOAD_H */
