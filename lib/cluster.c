/*
 * cluster.c
 *	  The data directory as a whole: is it one we support, is a server
 *	  running on it, who owns it, which modes new files get.
 *
 * Owns: pct_cluster_check_dir(), pct_cluster_server(), pct_cluster_owner(),
 * pct_cluster_modes().
 *
 * "Is a server running" errs on the side of yes: a postmaster.pid naming a
 * live process (or one we may not signal) means running, and so does a
 * server answering a libpq ping on the socket directory and port that
 * postmaster.pid records (which catches a postmaster in another PID
 * namespace, e.g. a container sharing the directory).  Without
 * postmaster.pid the server is stopped: a cleanly stopped or crashed
 * server that was never restarted leaves none, and guessing ports could
 * find another cluster's server.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pct_internal.h"

/* Major versions whose control file is version 1300 (FORMAT section 2). */
#define MIN_MAJOR	13
#define MAX_MAJOR	16

/* Lines of postmaster.pid (PostgreSQL's pidfile.h, counted from 1). */
#define PIDFILE_LINE_PID		1
#define PIDFILE_LINE_PORT		4
#define PIDFILE_LINE_SOCKET_DIR 5
#define PIDFILE_LINE_LISTEN_ADDR 6

/* How long a ping waits for an answer, in seconds (libpq's minimum). */
#define PING_TIMEOUT "2"

/* Copy at most 32 characters of a file's text for a message: control
 * characters become '?', trailing white space is dropped. */
static void
printable_excerpt(const char *text, size_t len, char *out, size_t outsize)
{
	size_t		n = 0;

	while (len > 0 && isspace((unsigned char) text[len - 1]))
		len--;
	for (size_t i = 0; i < len && n + 4 < outsize && i < 32; i++)
		out[n++] = isprint((unsigned char) text[i]) ? text[i] : '?';
	if (len > 32 && n + 4 < outsize)
	{
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* ---- the data directory ---- */

/* Parse PG_VERSION's text: a decimal major version and a newline. */
static bool
parse_major(const char *text, size_t len, int *major)
{
	long		v = 0;
	size_t		i = 0;

	while (i < len && isdigit((unsigned char) text[i]) && v < 100000)
		v = v * 10 + (text[i++] - '0');
	if (i == 0 || v >= 100000)
		return false;
	/* Only white space may follow ("15\n"); "9.6" is not a major. */
	for (; i < len; i++)
		if (!isspace((unsigned char) text[i]))
			return false;
	*major = (int) v;
	return true;
}

pct_rc
pct_cluster_check_dir(const char *pgdata, int *major)
{
	struct stat st;
	char		path[PCT_MAXPATH];
	char		text[64];
	char		shown[48];
	size_t		len;
	int			v;
	pct_rc		rc;

	if (pgdata == NULL || pgdata[0] == '\0')
		return pct_fail(PCT_ERR_ARG, NULL, NULL, "no data directory specified");
	if (stat(pgdata, &st) != 0)
		return pct_syserr("could not access directory \"%s\"", pgdata);
	if (!S_ISDIR(st.st_mode))
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"\"%s\" is not a directory", pgdata);
	if ((st.st_mode & 0777) != PCT_DIR_MODE &&
		(st.st_mode & 0777) != PCT_DIR_MODE_GROUP)
	{
		char		detail[128];

		snprintf(detail, sizeof(detail),
				 "Permissions are %04o; they should be u=rwx (0700) or "
				 "u=rwx,g=rx (0750).", (unsigned) (st.st_mode & 0777));
		return pct_fail(PCT_ERR_STATE, detail, NULL,
						"data directory \"%s\" has invalid permissions",
						pgdata);
	}

	if ((rc = pct_path(path, "%s/PG_VERSION", pgdata)) != PCT_OK)
		return rc;
	if (access(path, F_OK) != 0 && errno == ENOENT)
	{
		char		detail[PCT_MAXPATH + 64];

		snprintf(detail, sizeof(detail), "File \"%s\" is missing.", path);
		return pct_fail(PCT_ERR_STATE, detail, NULL,
						"directory \"%s\" is not a database cluster directory",
						pgdata);
	}
	rc = pct_read_file(path, text, sizeof(text), &len);
	if (rc != PCT_OK)
		return rc;
	if (!parse_major(text, len, &v))
	{
		printable_excerpt(text, len, shown, sizeof(shown));
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"file \"%s\" holds \"%s\", not a PostgreSQL major "
						"version", path, shown);
	}
	if (v < MIN_MAJOR || v > MAX_MAJOR)
	{
		char		hint[128];

		snprintf(hint, sizeof(hint),
				 "Only clusters of PostgreSQL %d to %d are supported.",
				 MIN_MAJOR, MAX_MAJOR);
		return pct_fail(PCT_ERR_STATE, NULL, hint,
						"data directory \"%s\" is of PostgreSQL %d, which is "
						"not supported", pgdata, v);
	}
	if (major != NULL)
		*major = v;
	return PCT_OK;
}

/* ---- is a server running? ---- */

/* The contents of postmaster.pid that matter here. */
typedef struct pidfile
{
	pid_t		pid;			/* 0 when the line is not there */
	char		port[16];		/* "" when not there */
	char		socket_dir[PCT_MAXPATH];	/* "" when not there or empty */
	char		listen_addr[256];	/* "" when not there or empty */
} pidfile;

/* Copy line n (from 1) of text into out; false when absent or too long. */
static bool
get_line(const char *text, int n, char *out, size_t outsize)
{
	const char *p = text;
	const char *end;
	size_t		len;

	for (int i = 1; i < n; i++)
	{
		p = strchr(p, '\n');
		if (p == NULL)
			return false;
		p++;
	}
	end = strchr(p, '\n');
	/* A last line without its newline may still be being written. */
	if (end == NULL)
		return false;
	len = (size_t) (end - p);
	if (len >= outsize)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

static pct_rc
parse_pidfile(const char *path, const char *text, pidfile *pf)
{
	char		line[64];
	char	   *end;
	long		v;

	memset(pf, 0, sizeof(*pf));
	if (!get_line(text, PIDFILE_LINE_PID, line, sizeof(line)))
		return pct_fail(PCT_ERR_STATE, NULL,
						"Another server may be starting up.  If not, remove "
						"the file.",
						"invalid data in PID file \"%s\"", path);
	errno = 0;
	v = strtol(line, &end, 10);
	/* A standalone backend (single-user mode) writes its PID negated. */
	if (v < 0)
		v = -v;
	if (errno != 0 || end == line || *end != '\0' || v <= 0 ||
		(long) (pid_t) v != v)
		return pct_fail(PCT_ERR_STATE, NULL,
						"Another server may be starting up.  If not, remove "
						"the file.",
						"invalid data in PID file \"%s\"", path);
	pf->pid = (pid_t) v;
	if (!get_line(text, PIDFILE_LINE_PORT, pf->port, sizeof(pf->port)))
		pf->port[0] = '\0';
	if (!get_line(text, PIDFILE_LINE_SOCKET_DIR, pf->socket_dir,
				  sizeof(pf->socket_dir)))
		pf->socket_dir[0] = '\0';
	if (!get_line(text, PIDFILE_LINE_LISTEN_ADDR, pf->listen_addr,
				  sizeof(pf->listen_addr)))
		pf->listen_addr[0] = '\0';
	return PCT_OK;
}

/* Does a server answer on the socket directory (or, without one, the
 * listen address) and port of the PID file? */
static bool
server_answers(const pidfile *pf)
{
	const char *keywords[4] = {"host", "port", "connect_timeout", NULL};
	const char *values[4];
	const char *host;
	PGPing		ping;

	if (pf->port[0] == '\0')
		return false;
	if (pf->socket_dir[0] != '\0')
		host = pf->socket_dir;
	else if (pf->listen_addr[0] == '\0')
		return false;
	/* As pg_ctl: a wildcard address is reachable on the loopback. */
	else if (strcmp(pf->listen_addr, "*") == 0)
		host = "localhost";
	else if (strcmp(pf->listen_addr, "0.0.0.0") == 0)
		host = "127.0.0.1";
	else if (strcmp(pf->listen_addr, "::") == 0)
		host = "::1";
	else
		host = pf->listen_addr;
	values[0] = host;
	values[1] = pf->port;
	values[2] = PING_TIMEOUT;
	values[3] = NULL;
	ping = PQpingParams(keywords, values, 0);
	/* REJECT: it is there but not accepting connections (starting up,
	 * shutting down, in recovery without hot standby). */
	return ping == PQPING_OK || ping == PQPING_REJECT;
}

/*
 * Read postmaster.pid into text (NUL-terminated); *exists false when there
 * is none, which is not an error (the server is stopped).
 */
static pct_rc
read_pidfile(const char *path, char *text, size_t size, bool *exists)
{
	int			fd;
	size_t		len = 0;
	pct_rc		rc = PCT_OK;

	*exists = false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? PCT_OK :
			pct_syserr("could not open file \"%s\"", path);
	*exists = true;
	for (;;)
	{
		ssize_t		n = read(fd, text + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			rc = pct_syserr("could not read file \"%s\"", path);
			break;
		}
		if (n == 0)
			break;
		len += (size_t) n;
		if (len == size - 1)
		{
			rc = pct_fail(PCT_ERR_STATE, NULL, NULL,
						  "invalid data in PID file \"%s\"", path);
			break;
		}
	}
	close(fd);
	text[len] = '\0';
	/* A NUL inside would hide the rest of the text from the parser. */
	if (rc == PCT_OK && strlen(text) != len)
		rc = pct_fail(PCT_ERR_STATE, NULL, NULL,
					  "invalid data in PID file \"%s\"", path);
	return rc;
}

pct_rc
pct_cluster_server(const char *pgdata, pct_server *srv, pid_t *pid)
{
	char		path[PCT_MAXPATH];
	char		text[8192];
	bool		exists;
	pidfile		pf;
	pct_rc		rc;

	if (pgdata == NULL || srv == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"pct_cluster_server: null argument");
	*srv = PCT_SERVER_STOPPED;
	if (pid != NULL)
		*pid = 0;
	if ((rc = pct_path(path, "%s/postmaster.pid", pgdata)) != PCT_OK)
		return rc;
	if ((rc = read_pidfile(path, text, sizeof(text), &exists)) != PCT_OK)
		return rc;
	/* No postmaster.pid: stopped (guessing ports could find another
	 * cluster's server). */
	if (!exists)
		return PCT_OK;
	if ((rc = parse_pidfile(path, text, &pf)) != PCT_OK)
		return rc;
	if (pid != NULL)
		*pid = pf.pid;

	/*
	 * A live PID means running, even when the process may be another one
	 * that reused the number of a crashed postmaster (as pg_ctl assumes);
	 * only our own PID certainly names no postmaster.
	 */
	if (pf.pid != getpid())
	{
		if (kill(pf.pid, 0) == 0 || errno == EPERM)
		{
			*srv = PCT_SERVER_RUNNING;
			return PCT_OK;
		}
		if (errno != ESRCH)
			return pct_syserr("could not check process %d", (int) pf.pid);
	}
	if (server_answers(&pf))
		*srv = PCT_SERVER_RUNNING;
	return PCT_OK;
}

/* ---- owner and modes ---- */

pct_rc
pct_cluster_owner(const char *pgdata, uid_t *uid)
{
	struct stat st;

	if (pgdata == NULL || uid == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"pct_cluster_owner: null argument");
	if (stat(pgdata, &st) != 0)
		return pct_syserr("could not stat directory \"%s\"", pgdata);
	*uid = st.st_uid;
	return PCT_OK;
}

pct_rc
pct_cluster_modes(const char *pgdata, mode_t *dirmode, mode_t *filemode)
{
	struct stat st;
	bool		group;

	if (pgdata == NULL || dirmode == NULL || filemode == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"pct_cluster_modes: null argument");
	if (stat(pgdata, &st) != 0)
		return pct_syserr("could not stat directory \"%s\"", pgdata);
	/* As the server: group access when PGDATA is group readable. */
	group = (st.st_mode & S_IRGRP) != 0;
	*dirmode = group ? PCT_DIR_MODE_GROUP : PCT_DIR_MODE;
	*filemode = group ? PCT_FILE_MODE_GROUP : PCT_FILE_MODE;
	return PCT_OK;
}
