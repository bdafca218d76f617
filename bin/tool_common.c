/*
 * tool_common.c
 *	  Shared code of the command-line tools; see tool_common.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool_common.h"

const char *progname = "pgcrypttools";
int			tool_verbose = 0;

static void
log_to_stderr(void *arg, pct_level level, const char *msg, const char *detail,
			  const char *hint)
{
	(void) arg;
	if (level == PCT_LOG_DEBUG && tool_verbose < 2)
		return;
	if (level == PCT_LOG_INFO && tool_verbose < 1)
		return;
	flockfile(stderr);
	switch (level)
	{
		case PCT_LOG_ERROR:
			fprintf(stderr, "%s: error: %s\n", progname, msg);
			break;
		case PCT_LOG_WARNING:
			fprintf(stderr, "%s: warning: %s\n", progname, msg);
			break;
		default:
			fprintf(stderr, "%s: %s\n", progname, msg);
			break;
	}
	if (detail)
		fprintf(stderr, "%s: detail: %s\n", progname, detail);
	if (hint)
		fprintf(stderr, "%s: hint: %s\n", progname, hint);
	funlockfile(stderr);
}

void
tool_init(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');

	progname = slash ? slash + 1 : argv0;
	pct_set_log(log_to_stderr, NULL);
	/* keys are wiped on every exit path, error exits included */
	atexit(pct_secure_wipe_all);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

void
tool_start(int argc, char **argv, void (*usage) (void))
{
	tool_init(argv[0]);
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0))
	{
		usage();
		exit(0);
	}
	if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0))
		tool_version();
}

void
tool_error(const char *hint, const char *fmt,...)
{
	char		msg[2048];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_to_stderr(NULL, PCT_LOG_ERROR, msg, NULL, hint);
}

void
tool_usage_error(const char *fmt,...)
{
	char		msg[2048];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (msg[0] != '\0')
		fprintf(stderr, "%s: error: %s\n", progname, msg);
	fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
	exit(1);
}

void
tool_refuse_root(void)
{
	if (geteuid() == 0)
	{
		tool_error("Run it as the user that owns the data directory.",
				   "cannot be run as root");
		exit(1);
	}
}

char *
tool_pgdata(const char *given)
{
	const char *d = given ? given : getenv("PGDATA");
	char	   *abs;

	if (d == NULL || d[0] == '\0')
		tool_usage_error("no data directory specified");
	abs = realpath(d, NULL);
	if (abs == NULL)
	{
		tool_error(NULL, "could not access data directory \"%s\": %s", d,
				   strerror(errno));
		exit(1);
	}
	return abs;
}

void
tool_trailing_datadir(int argc, char **argv, int optind_now,
					  const char **datadir_opt)
{
	int			i = optind_now;

	if (i < argc && *datadir_opt == NULL)
		*datadir_opt = argv[i++];
	if (i < argc)
		tool_usage_error("too many command-line arguments (first is \"%s\")",
						 argv[i]);
}

int
tool_parse_secs(const char *arg, const char *optname)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 0 || v > INT_MAX)
		tool_usage_error("invalid value \"%s\" for option %s", arg, optname);
	return (int) v;
}

void
tool_umask_from_pgdata(const char *pgdata)
{
	struct stat st;

	if (stat(pgdata, &st) == 0 && (st.st_mode & S_IRGRP))
		umask(0027);
	else
		umask(0077);
}

void
tool_version(void)
{
	printf("%s (pgcrypttools) %s\n", progname, PCT_VERSION_STR);
	exit(0);
}

pct_rc
tool_get_kek(const char *command, const char *keydir, const char *prompt,
			 bool authprompt, int timeout_secs, uint8_t kek[PCT_KEK_LEN])
{
	pct_keycmd	kc;
	int			tty = -1;
	pct_rc		rc;

	if (authprompt)
	{
		tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
		if (tty < 0)
		{
			tool_error(NULL, "could not open terminal for -R/--authprompt: %s",
					   strerror(errno));
			return PCT_ERR_COMMAND;
		}
	}
	memset(&kc, 0, sizeof(kc));
	kc.command = command;
	kc.keydir = keydir;
	kc.prompt = prompt;
	kc.terminal_fd = tty;
	kc.timeout_secs = timeout_secs;
	rc = pct_keycmd_run(&kc, kek);
	if (tty >= 0)
		close(tty);
	return rc;
}
