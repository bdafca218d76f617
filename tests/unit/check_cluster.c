/*
 * check_cluster.c
 *	  Unit tests of lib/cluster.c: the data directory check (modes,
 *	  PG_VERSION), "is a server running" (postmaster.pid, libpq ping), the
 *	  owner and the modes of new files.
 *
 * Owns: the cluster suite.  The ping is tested against a small fake server
 * on a Unix socket and on TCP (it answers a startup packet as a postmaster
 * would), and everything against a real PostgreSQL 15 cluster made by
 * initdb -g and started with pg_ctl.  initdb refuses root, so the real
 * cluster tests fail (loudly) when the suite runs as root; `make check`
 * runs it as an unprivileged user.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

/* ---- helpers ---- */

/* A new directory under $TMPDIR with the given mode and, when version is
 * not NULL, a PG_VERSION holding it.  Caller frees. */
static char *
make_dir(mode_t mode, const char *version)
{
	char	   *dir = unit_mkdtemp();

	if (version != NULL)
	{
		char		path[4096 + 16];

		snprintf(path, sizeof(path), "%s/PG_VERSION", dir);
		unit_write_file(path, version, strlen(version), 0600);
	}
	ck_assert_int_eq(chmod(dir, mode), 0);
	return dir;
}

static void
drop_dir(char *dir)
{
	unit_rmtree(dir);
	free(dir);
}

static void
write_pidfile(const char *dir, const char *text)
{
	char		path[4096 + 32];

	snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
	unit_write_file(path, text, strlen(text), 0600);
}

/* A process that is alive until killed. */
static pid_t
spawn_sleeper(void)
{
	pid_t		pid;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
	{
		for (;;)
			pause();
	}
	return pid;
}

static void
reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The PID of a process that has exited and been reaped. */
static pid_t
dead_pid(void)
{
	pid_t		pid;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	ck_assert_int_eq(kill(pid, 0), -1);
	return pid;
}

/* ---- the data directory ---- */

START_TEST(test_check_dir_ok)
{
	const char *versions[] = {"13\n", "14\n", "15\n", "16\n", "15", "15\r\n"};
	const int	want[] = {13, 14, 15, 16, 15, 15};

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
	{
		for (int g = 0; g < 2; g++)
		{
			char	   *dir = make_dir(g ? 0750 : 0700, versions[i]);
			int			major = -1;

			unit_capture_log();
			ck_assert_msg(pct_cluster_check_dir(dir, &major) == PCT_OK,
						  "refused %s: %s", versions[i], unit_last_error());
			ck_assert_int_eq(major, want[i]);
			drop_dir(dir);
		}
	}
}
END_TEST

START_TEST(test_check_dir_missing)
{
	char	   *dir = make_dir(0700, NULL);
	char		path[4096 + 32];
	int			major = -1;

	snprintf(path, sizeof(path), "%s/nonexistent", dir);
	unit_capture_log();
	ck_assert_int_eq(pct_cluster_check_dir(path, &major), PCT_ERR_SYS);
	ck_assert_ptr_nonnull(strstr(unit_last_error(),
								 "nonexistent\": No such file or directory"));
	/* A file is not a data directory. */
	snprintf(path, sizeof(path), "%s/file", dir);
	unit_write_file(path, "15\n", 3, 0600);
	ck_assert_int_eq(pct_cluster_check_dir(path, &major), PCT_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "is not a directory"));
	ck_assert_int_eq(pct_cluster_check_dir("", &major), PCT_ERR_ARG);
	ck_assert_int_eq(major, -1);
	drop_dir(dir);
}
END_TEST

START_TEST(test_check_dir_bad_modes)
{
	const mode_t modes[] = {0755, 0777, 0701, 0711, 0770, 0740, 0710, 0705,
	0500, 0600};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
	{
		char	   *dir = make_dir(modes[i], "15\n");
		char		want[16];
		int			major = -1;

		unit_capture_log();
		ck_assert_msg(pct_cluster_check_dir(dir, &major) == PCT_ERR_STATE,
					  "mode %04o accepted", (unsigned) modes[i]);
		ck_assert_ptr_nonnull(strstr(unit_last_error(),
									 "has invalid permissions"));
		snprintf(want, sizeof(want), "%04o", (unsigned) modes[i]);
		ck_assert_msg(strstr(unit_all_log(), want) != NULL,
					  "mode not named: %s", unit_all_log());
		ck_assert_int_eq(major, -1);
		chmod(dir, 0700);
		drop_dir(dir);
	}
}
END_TEST

START_TEST(test_check_dir_no_pg_version)
{
	char	   *dir = make_dir(0700, NULL);
	int			major = -1;

	unit_capture_log();
	ck_assert_int_eq(pct_cluster_check_dir(dir, &major), PCT_ERR_STATE);
	ck_assert_ptr_nonnull(strstr(unit_last_error(),
								 "is not a database cluster directory"));
	ck_assert_ptr_nonnull(strstr(unit_all_log(), "PG_VERSION"));
	drop_dir(dir);
}
END_TEST

/* Unsupported or unreadable versions are refused, naming what was found. */
START_TEST(test_check_dir_bad_version)
{
	const struct
	{
		const char *text;
		pct_rc		rc;
		const char *says;
	}			cases[] = {
		{"12\n", PCT_ERR_STATE, "PostgreSQL 12,"},
		{"17\n", PCT_ERR_STATE, "PostgreSQL 17,"},
		{"9\n", PCT_ERR_STATE, "PostgreSQL 9,"},
		{"150\n", PCT_ERR_STATE, "PostgreSQL 150,"},
		{"9.6\n", PCT_ERR_FORMAT, "holds \"9.6\""},
		{"", PCT_ERR_FORMAT, "holds \"\""},
		{"\n", PCT_ERR_FORMAT, "holds \"\""},
		{"fifteen\n", PCT_ERR_FORMAT, "holds \"fifteen\""},
		{"15 16\n", PCT_ERR_FORMAT, "holds \"15 16\""},
		{"1\0015\n", PCT_ERR_FORMAT, "holds \"1?5\""},
		{"99999999999999999999\n", PCT_ERR_FORMAT, "holds \"9999"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char	   *dir = make_dir(0700, cases[i].text);
		int			major = -1;

		unit_capture_log();
		ck_assert_msg(pct_cluster_check_dir(dir, &major) == cases[i].rc,
					  "PG_VERSION \"%s\": %s", cases[i].text,
					  unit_last_error());
		ck_assert_msg(strstr(unit_last_error(), cases[i].says) != NULL,
					  "message does not say %s: %s", cases[i].says,
					  unit_last_error());
		ck_assert_int_eq(major, -1);
		drop_dir(dir);
	}
}
END_TEST

/* ---- owner and modes ---- */

START_TEST(test_owner)
{
	char	   *dir = make_dir(0700, "15\n");
	char		path[4096 + 32];
	uid_t		uid = (uid_t) -1;
	uid_t		want = geteuid();

	/* As root, give the directory an owner nobody else has. */
	if (geteuid() == 0)
	{
		want = 54321;
		ck_assert_int_eq(chown(dir, want, 54321), 0);
	}
	unit_capture_log();
	ck_assert_int_eq(pct_cluster_owner(dir, &uid), PCT_OK);
	ck_assert_uint_eq(uid, want);
	/* The directory's owner, not ours: / belongs to root. */
	ck_assert_int_eq(pct_cluster_owner("/", &uid), PCT_OK);
	ck_assert_uint_eq(uid, 0);
	snprintf(path, sizeof(path), "%s/nonexistent", dir);
	ck_assert_int_eq(pct_cluster_owner(path, &uid), PCT_ERR_SYS);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "No such file"));
	drop_dir(dir);
}
END_TEST

START_TEST(test_modes)
{
	const struct
	{
		mode_t		pgdata;
		mode_t		dir;
		mode_t		file;
	}			cases[] = {
		{0700, 0700, 0600},
		{0750, 0750, 0640},
		/* group read decides, as the format says */
		{0740, 0750, 0640},
		{0710, 0700, 0600},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char	   *dir = make_dir(cases[i].pgdata, "15\n");
		mode_t		dm = 0,
					fm = 0;

		unit_capture_log();
		ck_assert_int_eq(pct_cluster_modes(dir, &dm, &fm), PCT_OK);
		ck_assert_uint_eq(dm, cases[i].dir);
		ck_assert_uint_eq(fm, cases[i].file);
		drop_dir(dir);
	}
	{
		mode_t		dm,
					fm;

		ck_assert_int_eq(pct_cluster_modes("/nonexistent/pgdata", &dm, &fm),
						 PCT_ERR_SYS);
	}
}
END_TEST

/* ---- postmaster.pid ---- */

START_TEST(test_server_no_pidfile)
{
	char	   *dir = make_dir(0700, "15\n");
	pct_server	srv = PCT_SERVER_RUNNING;
	pid_t		pid = 123;

	unit_capture_log();
	ck_assert_int_eq(pct_cluster_server(dir, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_STOPPED);
	ck_assert_int_eq(pid, 0);
	/* Not an error: nothing is reported. */
	ck_assert_str_eq(unit_all_log(), "");
	drop_dir(dir);
}
END_TEST

START_TEST(test_server_live_pid)
{
	char	   *dir = make_dir(0700, "15\n");
	pid_t		child = spawn_sleeper();
	char		text[256];
	pct_server	srv = PCT_SERVER_STOPPED;
	pid_t		pid = 0;

	/* A full file; nothing listens on its socket, the PID decides. */
	snprintf(text, sizeof(text), "%d\n%s\n1700000000\n5432\n%s\n\n"
			 "  5432001    123456\nready   \n", (int) child, dir, dir);
	write_pidfile(dir, text);
	unit_capture_log();
	ck_assert_int_eq(pct_cluster_server(dir, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_RUNNING);
	ck_assert_int_eq(pid, child);

	/* Only the PID line, as while a postmaster is starting. */
	snprintf(text, sizeof(text), "%d\n", (int) child);
	write_pidfile(dir, text);
	srv = PCT_SERVER_STOPPED;
	ck_assert_int_eq(pct_cluster_server(dir, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_RUNNING);

	/* A standalone backend (single-user mode) writes its PID negated. */
	snprintf(text, sizeof(text), "-%d\n%s\n", (int) child, dir);
	write_pidfile(dir, text);
	srv = PCT_SERVER_STOPPED;
	pid = 0;
	ck_assert_int_eq(pct_cluster_server(dir, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_RUNNING);
	ck_assert_int_eq(pid, child);

	/* Once the process is gone, the same file means stopped. */
	reap(child);
	snprintf(text, sizeof(text), "%d\n%s\n", (int) child, dir);
	write_pidfile(dir, text);
	ck_assert_int_eq(pct_cluster_server(dir, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_STOPPED);
	ck_assert_int_eq(pid, child);
	drop_dir(dir);
}
END_TEST

/* A stale postmaster.pid that names the caller's own PID (reused, as
 * after a container restart) does not make a server. */
START_TEST(test_server_own_pid)
{
	char	   *dir = make_dir(0700, "15\n");
	char		text[256];
	pct_server	srv = PCT_SERVER_RUNNING;
	pid_t		pid = 0;

	snprintf(text, sizeof(text), "%d\n%s\n", (int) getpid(), dir);
	write_pidfile(dir, text);
	unit_capture_log();
	ck_assert_int_eq(pct_cluster_server(dir, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_STOPPED);
	ck_assert_int_eq(pid, getpid());
	drop_dir(dir);
}
END_TEST

/* A process we may not signal (EPERM) counts as alive.  PID 1 always
 * exists: as root kill() succeeds, as a user it fails with EPERM. */
START_TEST(test_server_eperm)
{
	char	   *dir = make_dir(0700, "15\n");
	pct_server	srv = PCT_SERVER_STOPPED;
	pid_t		pid = 0;

	write_pidfile(dir, "1\n");
	unit_capture_log();
	ck_assert_int_eq(pct_cluster_server(dir, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_RUNNING);
	ck_assert_int_eq(pid, 1);
	drop_dir(dir);
}
END_TEST

START_TEST(test_server_dead_pid)
{
	char	   *dir = make_dir(0700, "15\n");
	pid_t		gone = dead_pid();
	char		text[8192];
	pct_server	srv = PCT_SERVER_RUNNING;
	pid_t		pid = 0;

	/* Port and socket directory recorded, but nobody answers there. */
	snprintf(text, sizeof(text), "%d\n%s\n1700000000\n54329\n%s\n\n"
			 "  5432001    123456\nready   \n", (int) gone, dir, dir);
	write_pidfile(dir, text);
	unit_capture_log();
	ck_assert_int_eq(pct_cluster_server(dir, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_STOPPED);
	ck_assert_int_eq(pid, gone);
	drop_dir(dir);
}
END_TEST

START_TEST(test_server_invalid_pidfile)
{
	const char *texts[] = {"", "\n", "abc\n", "0\n", "-0\n", "12x\n", "-\n",
		"99999999999999999999\n", "4194305", " \n", "1 2\n"};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
	{
		char	   *dir = make_dir(0700, "15\n");
		pct_server	srv = PCT_SERVER_STOPPED;
		pid_t		pid = 0;

		write_pidfile(dir, texts[i]);
		unit_capture_log();
		ck_assert_msg(pct_cluster_server(dir, &srv, &pid) == PCT_ERR_STATE,
					  "accepted postmaster.pid \"%s\"", texts[i]);
		ck_assert_ptr_nonnull(strstr(unit_last_error(),
									 "invalid data in PID file"));
		drop_dir(dir);
	}
	/* A NUL byte would hide the rest of the file. */
	{
		char	   *dir = make_dir(0700, "15\n");
		char		path[4096 + 32];
		pct_server	srv;

		snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
		unit_write_file(path, "12\n\0003\n", 6, 0600);
		unit_capture_log();
		ck_assert_int_eq(pct_cluster_server(dir, &srv, NULL), PCT_ERR_STATE);
		ck_assert_ptr_nonnull(strstr(unit_last_error(),
									 "invalid data in PID file"));
		/* Unreadable (a directory): an error, never "stopped". */
		ck_assert_int_eq(unlink(path), 0);
		ck_assert_int_eq(mkdir(path, 0700), 0);
		ck_assert_int_eq(pct_cluster_server(dir, &srv, NULL), PCT_ERR_SYS);
		ck_assert_ptr_nonnull(strstr(unit_last_error(), "postmaster.pid"));
		drop_dir(dir);
	}
}
END_TEST

/* ---- a fake server for the ping ---- */

typedef struct fake_server
{
	int			listen_fd;
	const char *sqlstate;		/* error to answer with; NULL: hang up */
	int			connections;	/* how many it served */
	pthread_t	thread;
} fake_server;

static bool
read_full(int fd, void *buf, size_t len)
{
	uint8_t    *p = buf;

	while (len > 0)
	{
		ssize_t		n = read(fd, p, len);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t) n;
	}
	return true;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
		(uint32_t) p[2] << 8 | p[3];
}

/*
 * Serve one connection as a postmaster that refuses it: decline SSL and
 * GSS encryption requests ('N'), read the startup packet, then answer with
 * an ErrorResponse carrying the SQLSTATE, or just hang up.
 */
static void
serve_one(fake_server *fs, int fd)
{
	for (int round = 0; round < 4; round++)
	{
		uint8_t		hdr[8];
		uint8_t		rest[4096];
		uint32_t	len,
					code;

		if (!read_full(fd, hdr, 8))
			return;
		len = get_be32(hdr);
		code = get_be32(hdr + 4);
		if (len < 8 || len - 8 > sizeof(rest) || !read_full(fd, rest, len - 8))
			return;
		/* SSLRequest, GSSENCRequest */
		if (code == 80877103 || code == 80877104)
		{
			if (write(fd, "N", 1) != 1)
				return;
			continue;
		}
		break;
	}
	if (fs->sqlstate != NULL)
	{
		uint8_t		msg[256];
		size_t		n = 5;
		int			w;

		w = snprintf((char *) msg + n, sizeof(msg) - n,
					 "SFATAL%cVFATAL%cC%s%cMfake server%c%c",
					 0, 0, fs->sqlstate, 0, 0, 0);
		/* w counts the embedded field terminators and the final one. */
		n += (size_t) w;
		msg[0] = 'E';
		msg[1] = (uint8_t) ((n - 1) >> 24);
		msg[2] = (uint8_t) ((n - 1) >> 16);
		msg[3] = (uint8_t) ((n - 1) >> 8);
		msg[4] = (uint8_t) (n - 1);
		if (write(fd, msg, n) != (ssize_t) n)
			return;
	}
}

static void *
fake_server_main(void *arg)
{
	fake_server *fs = arg;
	struct pollfd pfd = {.fd = fs->listen_fd,.events = POLLIN};

	/* Serve every connection (libpq may try several addresses) until no
	 * new one comes for a second; give up after 10 s without any. */
	while (poll(&pfd, 1, fs->connections == 0 ? 10000 : 1000) == 1)
	{
		int			fd = accept(fs->listen_fd, NULL, NULL);

		if (fd < 0)
			break;
		serve_one(fs, fd);
		fs->connections++;
		close(fd);
	}
	return NULL;
}

/* Listen on dir/.s.PGSQL.port and serve in a thread. */
static void
fake_server_unix(fake_server *fs, const char *dir, int port,
				 const char *sqlstate)
{
	struct sockaddr_un sa;

	memset(fs, 0, sizeof(*fs));
	fs->sqlstate = sqlstate;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	ck_assert_int_lt(snprintf(sa.sun_path, sizeof(sa.sun_path),
							  "%s/.s.PGSQL.%d", dir, port),
					 (int) sizeof(sa.sun_path));
	fs->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fs->listen_fd, 0);
	ck_assert_msg(bind(fs->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) == 0,
				  "bind %s: %s", sa.sun_path, strerror(errno));
	ck_assert_int_eq(listen(fs->listen_fd, 8), 0);
	ck_assert_int_eq(pthread_create(&fs->thread, NULL, fake_server_main, fs),
					 0);
}

/* Listen on 127.0.0.1, a port the kernel picks; returns it. */
static int
fake_server_tcp(fake_server *fs, const char *sqlstate)
{
	struct sockaddr_in sa;
	socklen_t	salen = sizeof(sa);

	memset(fs, 0, sizeof(*fs));
	fs->sqlstate = sqlstate;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fs->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fs->listen_fd, 0);
	ck_assert_int_eq(bind(fs->listen_fd, (struct sockaddr *) &sa, sizeof(sa)),
					 0);
	ck_assert_int_eq(getsockname(fs->listen_fd, (struct sockaddr *) &sa,
								 &salen), 0);
	ck_assert_int_eq(listen(fs->listen_fd, 8), 0);
	ck_assert_int_eq(pthread_create(&fs->thread, NULL, fake_server_main, fs),
					 0);
	return ntohs(sa.sin_port);
}

static void
fake_server_stop(fake_server *fs)
{
	/* Wakes the thread's poll() with an error. */
	shutdown(fs->listen_fd, SHUT_RDWR);
	ck_assert_int_eq(pthread_join(fs->thread, NULL), 0);
	close(fs->listen_fd);
}

/* No live PID, but something answers on the recorded socket: RUNNING when
 * it answers like a postmaster (any SQLSTATE; 57P03 is libpq's REJECT),
 * STOPPED when it hangs up without a word. */
START_TEST(test_server_ping_unix)
{
	const struct
	{
		const char *sqlstate;
		pct_server	want;
	}			cases[] = {
		{"57P03", PCT_SERVER_RUNNING},	/* starting up: PQPING_REJECT */
		{"28000", PCT_SERVER_RUNNING},	/* auth failed: PQPING_OK */
		{"3D000", PCT_SERVER_RUNNING},	/* no such database: PQPING_OK */
		{NULL, PCT_SERVER_STOPPED},		/* PQPING_NO_RESPONSE */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char	   *dir = make_dir(0700, "15\n");
		pid_t		gone = dead_pid();
		fake_server fs;
		char		text[8192];
		pct_server	srv;
		pid_t		pid = 0;

		fake_server_unix(&fs, dir, 54329, cases[i].sqlstate);
		snprintf(text, sizeof(text), "%d\n%s\n1700000000\n54329\n%s\n\n"
				 "  5432001    123456\nready   \n", (int) gone, dir, dir);
		write_pidfile(dir, text);
		unit_capture_log();
		srv = cases[i].want == PCT_SERVER_RUNNING ? PCT_SERVER_STOPPED :
			PCT_SERVER_RUNNING;
		ck_assert_int_eq(pct_cluster_server(dir, &srv, &pid), PCT_OK);
		fake_server_stop(&fs);
		ck_assert_msg(srv == cases[i].want, "sqlstate %s: server %s",
					  cases[i].sqlstate ? cases[i].sqlstate : "(none)",
					  srv == PCT_SERVER_RUNNING ? "running" : "stopped");
		/* The answer came from the fake server, not from elsewhere. */
		ck_assert_int_ge(fs.connections, 1);
		ck_assert_int_eq(pid, gone);
		drop_dir(dir);
	}
}
END_TEST

/* Without a socket directory the listen address is used; a wildcard
 * means the loopback (as in pg_ctl; glibc happens to resolve "*" and
 * 0.0.0.0 to the loopback as well, so on Linux these only prove the
 * wildcard cases work). */
START_TEST(test_server_ping_tcp)
{
	const char *addrs[] = {"127.0.0.1", "*", "0.0.0.0"};

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
	{
		char	   *dir = make_dir(0700, "15\n");
		pid_t		gone = dead_pid();
		fake_server fs;
		char		text[8192];
		pct_server	srv = PCT_SERVER_STOPPED;
		int			port;

		port = fake_server_tcp(&fs, "28000");
		snprintf(text, sizeof(text), "%d\n%s\n1700000000\n%d\n\n%s\n"
				 "  5432001    123456\nready   \n", (int) gone, dir, port,
				 addrs[i]);
		write_pidfile(dir, text);
		unit_capture_log();
		ck_assert_int_eq(pct_cluster_server(dir, &srv, NULL), PCT_OK);
		fake_server_stop(&fs);
		ck_assert_msg(srv == PCT_SERVER_RUNNING, "listen address %s: stopped",
					  addrs[i]);
		ck_assert_int_ge(fs.connections, 1);
		drop_dir(dir);
	}
	/* Neither a socket directory nor a listen address: nothing to ask. */
	{
		char	   *dir = make_dir(0700, "15\n");
		char		text[256];
		pct_server	srv = PCT_SERVER_RUNNING;

		snprintf(text, sizeof(text), "%d\n%s\n1700000000\n5432\n\n\n",
				 (int) dead_pid(), dir);
		write_pidfile(dir, text);
		ck_assert_int_eq(pct_cluster_server(dir, &srv, NULL), PCT_OK);
		ck_assert_int_eq(srv, PCT_SERVER_STOPPED);
		drop_dir(dir);
	}
}
END_TEST

/* ---- a real cluster (initdb -g, pg_ctl) ---- */

static char *real_dir;			/* holds pgdata/ and sock/ */
static char real_pgdata[4096];
static char real_sock[4096];
static char real_error[1024];

static const char *
pg_bindir(void)
{
	const char *v = getenv("PG_BINDIR");

	return v ? v : "/usr/lib/postgresql/15/bin";
}

/* Run a PostgreSQL program (LC_ALL=C), output to log; exit status or -1. */
static int
run_pg(char *const argv[], const char *log)
{
	char		prog[4096];
	char	   *av[32];
	pid_t		pid;
	int			status;
	int			n;

	snprintf(prog, sizeof(prog), "%s/%s", pg_bindir(), argv[0]);
	av[0] = prog;
	for (n = 1; argv[n] != NULL && n < 31; n++)
		av[n] = argv[n];
	av[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
	{
		int			fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		setenv("LC_ALL", "C", 1);
		unsetenv("PGDATA");
		execv(prog, av);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
real_setup(void)
{
	char		log[4096 + 16];
	char	   *argv[] = {"initdb", "-D", real_pgdata, "-g", "-N", "-A",
		"trust", "-U", "postgres", "--no-instructions", NULL};
	int			rc;

	real_error[0] = '\0';
	if (geteuid() == 0)
	{
		snprintf(real_error, sizeof(real_error),
				 "these tests run initdb, which refuses to run as root: run "
				 "the unit tests as an unprivileged user (make check does "
				 "this)");
		return;
	}
	real_dir = unit_mkdtemp();
	snprintf(real_pgdata, sizeof(real_pgdata), "%s/pgdata", real_dir);
	snprintf(real_sock, sizeof(real_sock), "%s/sock", real_dir);
	if (mkdir(real_sock, 0700) != 0)
	{
		snprintf(real_error, sizeof(real_error), "mkdir %.900s: %s", real_sock,
				 strerror(errno));
		return;
	}
	snprintf(log, sizeof(log), "%s/initdb.log", real_dir);
	rc = run_pg(argv, log);
	if (rc != 0)
		snprintf(real_error, sizeof(real_error),
				 "initdb failed with status %d, see %.900s", rc, log);
}

static void
real_teardown(void)
{
	char		path[4096 + 32];
	char		log[4096 + 16];

	if (real_dir == NULL)
		return;
	/* A test that failed half-way may have left the server running. */
	snprintf(path, sizeof(path), "%s/postmaster.pid", real_pgdata);
	snprintf(log, sizeof(log), "%s/pg_ctl.log", real_dir);
	if (access(path, F_OK) == 0)
	{
		char	   *argv[] = {"pg_ctl", "-D", real_pgdata, "-m", "immediate",
		"-w", "stop", NULL};

		(void) run_pg(argv, log);
	}
	unit_rmtree(real_dir);
	free(real_dir);
	real_dir = NULL;
}

static void
need_real(void)
{
	ck_assert_msg(real_error[0] == '\0', "%s", real_error);
	ck_assert_ptr_nonnull(real_dir);
}

/* What initdb -g made: accepted, group modes, owned by us, stopped. */
START_TEST(test_real_cluster_dir)
{
	int			major = 0;
	mode_t		dm = 0,
				fm = 0;
	uid_t		uid;
	struct stat st;
	char		path[4096 + 32];
	pct_server	srv = PCT_SERVER_RUNNING;
	pid_t		pid = 1;

	need_real();
	unit_capture_log();
	ck_assert_msg(pct_cluster_check_dir(real_pgdata, &major) == PCT_OK,
				  "%s", unit_last_error());
	ck_assert_int_eq(major, 15);
	ck_assert_int_eq(pct_cluster_modes(real_pgdata, &dm, &fm), PCT_OK);
	ck_assert_uint_eq(dm, 0750);
	ck_assert_uint_eq(fm, 0640);
	/* The same modes initdb gave its own directories and files. */
	snprintf(path, sizeof(path), "%s/global", real_pgdata);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, dm);
	snprintf(path, sizeof(path), "%s/PG_VERSION", real_pgdata);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, fm);
	ck_assert_int_eq(pct_cluster_owner(real_pgdata, &uid), PCT_OK);
	ck_assert_uint_eq(uid, geteuid());
	ck_assert_int_eq(pct_cluster_server(real_pgdata, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_STOPPED);
	ck_assert_int_eq(pid, 0);
}
END_TEST

/* Read a file into a string (malloc'd). */
static char *
slurp(const char *path)
{
	char	   *buf = malloc(65536);
	size_t		n;

	ck_assert_ptr_nonnull(buf);
	n = unit_read_file(path, buf, 65535);
	buf[n] = '\0';
	return buf;
}

/* A running server is seen through its PID and, with the PID made
 * useless, through the ping on the socket postmaster.pid records. */
START_TEST(test_real_server_running)
{
	char		opts[4096 + 64];
	char		log[4096 + 16];
	char		srvlog[4096 + 16];
	char		path[4096 + 32];
	char		port[16];
	char	   *start[] = {"pg_ctl", "-D", real_pgdata, "-l", srvlog, "-o",
		opts, "-w", "-t", "60", "start", NULL};
	char	   *stop[] = {"pg_ctl", "-D", real_pgdata, "-m", "fast", "-w",
	"stop", NULL};
	char	   *pidtext,
			   *rest;
	pct_server	srv = PCT_SERVER_STOPPED;
	pid_t		pid = 0;
	long		postmaster;
	char	   *fake;
	char		text[8192];

	need_real();
	snprintf(port, sizeof(port), "%d", 50000 + (int) (getpid() % 10000));
	snprintf(opts, sizeof(opts), "-k %s -p %s -c listen_addresses=''",
			 real_sock, port);
	snprintf(log, sizeof(log), "%s/pg_ctl.log", real_dir);
	snprintf(srvlog, sizeof(srvlog), "%s/server.log", real_dir);
	ck_assert_msg(run_pg(start, log) == 0, "pg_ctl start failed, see %s",
				  log);

	snprintf(path, sizeof(path), "%s/postmaster.pid", real_pgdata);
	pidtext = slurp(path);
	postmaster = strtol(pidtext, NULL, 10);
	ck_assert_int_gt(postmaster, 0);

	unit_capture_log();
	ck_assert_int_eq(pct_cluster_server(real_pgdata, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_RUNNING);
	ck_assert_int_eq(pid, postmaster);

	/* The same postmaster.pid with a dead PID, as from another PID
	 * namespace: the server still answers on the recorded socket. */
	fake = make_dir(0700, "15\n");
	rest = strchr(pidtext, '\n');
	ck_assert_ptr_nonnull(rest);
	snprintf(text, sizeof(text), "%d%s", (int) dead_pid(), rest);
	write_pidfile(fake, text);
	srv = PCT_SERVER_STOPPED;
	ck_assert_int_eq(pct_cluster_server(fake, &srv, NULL), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_RUNNING);

	/* On another port nothing answers. */
	{
		char	   *lines[8] = {0};
		char	   *copy = strdup(rest + 1);
		char	   *save = NULL;
		int			n = 0;

		ck_assert_ptr_nonnull(copy);
		/* lines: datadir, start time, port, socket dir, ... */
		for (char *l = strtok_r(copy, "\n", &save); l != NULL && n < 8;
			 l = strtok_r(NULL, "\n", &save))
			lines[n++] = l;
		ck_assert_int_ge(n, 4);
		ck_assert_str_eq(lines[2], port);
		ck_assert_str_eq(lines[3], real_sock);
		snprintf(text, sizeof(text), "%d\n%s\n%s\n%d\n%s\n\n",
				 (int) dead_pid(), lines[0], lines[1], atoi(port) + 1,
				 lines[3]);
		free(copy);
	}
	write_pidfile(fake, text);
	srv = PCT_SERVER_RUNNING;
	ck_assert_int_eq(pct_cluster_server(fake, &srv, NULL), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_STOPPED);
	drop_dir(fake);
	free(pidtext);

	/* Stopped cleanly: postmaster.pid is gone. */
	ck_assert_msg(run_pg(stop, log) == 0, "pg_ctl stop failed, see %s", log);
	srv = PCT_SERVER_RUNNING;
	ck_assert_int_eq(pct_cluster_server(real_pgdata, &srv, &pid), PCT_OK);
	ck_assert_int_eq(srv, PCT_SERVER_STOPPED);
	ck_assert_int_eq(pid, 0);
}
END_TEST

static Suite *
cluster_suite(void)
{
	Suite	   *s = suite_create("cluster");
	TCase	   *tc = tcase_create("basic");
	TCase	   *real = tcase_create("initdb");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_check_dir_ok);
	tcase_add_test(tc, test_check_dir_missing);
	tcase_add_test(tc, test_check_dir_bad_modes);
	tcase_add_test(tc, test_check_dir_no_pg_version);
	tcase_add_test(tc, test_check_dir_bad_version);
	tcase_add_test(tc, test_owner);
	tcase_add_test(tc, test_modes);
	tcase_add_test(tc, test_server_no_pidfile);
	tcase_add_test(tc, test_server_live_pid);
	tcase_add_test(tc, test_server_eperm);
	tcase_add_test(tc, test_server_own_pid);
	tcase_add_test(tc, test_server_dead_pid);
	tcase_add_test(tc, test_server_invalid_pidfile);
	tcase_add_test(tc, test_server_ping_unix);
	tcase_add_test(tc, test_server_ping_tcp);
	suite_add_tcase(s, tc);

	/* One initdb for the case, made before the tests fork; the teardown
	 * stops a server a failed test left running. */
	tcase_add_unchecked_fixture(real, real_setup, real_teardown);
	tcase_set_timeout(real, 180);
	tcase_add_test(real, test_real_cluster_dir);
	tcase_add_test(real, test_real_server_running);
	suite_add_tcase(s, real);
	return s;
}

UNIT_MAIN(cluster_suite)
