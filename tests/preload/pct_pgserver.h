/*
 * pct_pgserver.h
 *	  The part of the test preload that knows the PostgreSQL server it runs
 *	  in (pct_pgserver.c, the only unit compiled with the server headers).
 *	  Plain C types only, so that both sides can include it.
 */
#ifndef PCT_PGSERVER_H
#define PCT_PGSERVER_H

#include <stdbool.h>
#include <stddef.h>

/* Resolve the server's exported globals with dlsym(); false when this
 * process has none (it is not a PostgreSQL server). */
bool		pp_server_resolve(void);
/* The major version of the server (15). */
int			pp_server_major(void);
/* The data directory (absolute), or NULL before the server knows it. */
const char *pp_server_datadir(void);
/* A walsender of a replication (not database) connection: it streams WAL
 * and sends base backups, both as the bytes on disk. */
bool		pp_server_phys_walsender(void);
/* A walsender of a database connection (logical decoding). */
bool		pp_server_db_walsender(void);
/* The walreceiver: it writes the WAL bytes a primary sent. */
bool		pp_server_walreceiver(void);
/* Is [p, p+len) inside the shared buffer pool? */
bool		pp_server_in_shared_buffers(const void *p, size_t len);
/* Called by fopen(): when the server opens its main configuration file,
 * define cluster_key_command, which a stock server does not know. */
void		pp_server_config_opened(const char *path);
/* The server's value of cluster_key_command: NULL when the setting could
 * not be defined, else the value ("" when not set). */
const char *pp_server_key_command(void);
/* Leave the process as the server does on a FATAL error (proc_exit(), so
 * that the postmaster removes its lock files), else _exit(). */
void		pp_server_exit(int code) __attribute__((noreturn));

#endif							/* PCT_PGSERVER_H */
