/*
 * tool_common.h
 *	  What the command-line tools share: messages, option helpers, PGDATA,
 *	  getting a cluster key.  Tools may exit; the library never does.
 */
#ifndef TOOL_COMMON_H
#define TOOL_COMMON_H

#include "pg_cryptokeys.h"

extern const char *progname;
extern int	tool_verbose;

/* Set progname from argv[0] and route library messages to stderr. */
void		tool_init(const char *argv0);
/* tool_init(), then answer --help/-? (usage(), exit 0) and --version/-V
 * given as the first argument, as PostgreSQL's tools do. */
void		tool_start(int argc, char **argv, void (*usage) (void));
/* Print "Try "prog --help" for more information." and exit(1). */
void		tool_usage_error(const char *fmt,...)
			__attribute__((format(printf, 1, 2), noreturn));
/* Print an error (and optional hint) on stderr. */
void		tool_error(const char *hint, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
/* Refuse to run as root (exit 1). */
void		tool_refuse_root(void);
/* PGDATA from the option, else the environment; absolute; exit(1) when
 * missing.  malloc'd. */
char	   *tool_pgdata(const char *given);
/* After the options: take one more argument as DATADIR unless -D gave it
 * (*datadir_opt), and refuse any further argument (exit 1). */
void		tool_trailing_datadir(int argc, char **argv, int optind_now,
								  const char **datadir_opt);
/* Parse a number of seconds for option optname (exit 1 on bad input). */
int			tool_parse_secs(const char *arg, const char *optname);
/* Take the umask from PGDATA's group access (like PostgreSQL's tools). */
void		tool_umask_from_pgdata(const char *pgdata);
/* Print the version line and exit 0. */
void		tool_version(void) __attribute__((noreturn));

/*
 * Run a cluster key command for the key directory keydir (%d), with prompt
 * (%p; NULL for the default), and parse its key into kek (secure memory).
 * With authprompt, %R is an fd open on /dev/tty.
 */
pct_rc		tool_get_kek(const char *command, const char *keydir,
						 const char *prompt, bool authprompt,
						 int timeout_secs, uint8_t kek[PCT_KEK_LEN]);

#endif							/* TOOL_COMMON_H */
