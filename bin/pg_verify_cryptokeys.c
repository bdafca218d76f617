/*
 * pg_verify_cryptokeys.c
 *	  Check the keys and key state of an encrypted PostgreSQL cluster.
 *
 * Made for cron on live and stopped clusters: it never writes and takes no
 * lock.  One line per check on stdout, "ok: ..." or "FAIL: ..." (with -q
 * only the failures); exit 0 when every check passes, 1 when one fails, 2
 * when it could not check.
 *
 * Theory of operation:
 *	1. Read pg_control: it must be version 1400 (else: could not check).
 *	2. Lock file and journal: none; or held by a running process (an
 *	   operation is in progress); or left by a dead one (an interrupted
 *	   operation, and which command finishes it: the journal says which).
 *	3. No new/ or old/ beside live/ (an interrupted key change).
 *	4. live/ passes the checks of FORMAT 1.4: both keys, one generation, no
 *	   duplicates, regular files, no symlinks, the cluster owner's, not
 *	   writable by group or others.
 *	5. pg_control's encryption field is valid for that generation.
 *	6. Each key file unwraps with the cluster key (from -c, else the
 *	   cluster's cluster_key_command) and has the key length pg_control
 *	   requires.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool_common.h"

#define EXIT_CHECK_FAILED	1
#define EXIT_CANNOT_CHECK	2

static bool quiet;
static int	failures;

/* While set, library errors become the text of the current FAIL line. */
static char captured[2048];
static bool capturing;

static void
usage(void)
{
	printf("%s checks the keys of an encrypted PostgreSQL cluster.\n\n", progname);
	printf("Usage:\n");
	printf("  %s [OPTION]... [[-D] DATADIR]\n", progname);
	printf("\nOptions:\n");
	printf(" [-D, --pgdata=]DATADIR  data directory (default: environment variable PGDATA)\n");
	printf("  -c, --key-command=CMD  cluster key command (default: cluster_key_command\n");
	printf("                         from the cluster's configuration)\n");
	printf("  -R, --authprompt       let the key command prompt on the terminal (%%R)\n");
	printf("  -t, --timeout=SECS     stop the key command after SECS seconds (default: 60)\n");
	printf("  -q, --quiet            print nothing when every check passes\n");
	printf("  -v, --verbose          report more detail\n");
	printf("  -V, --version          output version information, then exit\n");
	printf("  -?, --help             show this help, then exit\n");
	printf("\nExit status: 0 all checks passed, 1 a check failed, 2 could not check.\n");
}

static void
check_ok(const char *fmt,...)
__attribute__((format(printf, 1, 2)));
static void
check_fail(const char *fmt,...)
__attribute__((format(printf, 1, 2)));

static void
check_ok(const char *fmt,...)
{
	va_list		ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	fputs("ok: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
}

static void
check_fail(const char *fmt,...)
{
	va_list		ap;

	failures++;
	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
}

static void
print_finding(void *arg, const char *path, const char *what)
{
	(void) arg;
	check_fail("%s: \"%s\"", what, path);
}

static void
log_cb(void *arg, pct_level level, const char *msg, const char *detail,
	   const char *hint)
{
	(void) arg;
	if (capturing && level == PCT_LOG_ERROR)
	{
		snprintf(captured, sizeof(captured), "%s", msg);
		return;
	}
	if (level == PCT_LOG_ERROR)
		fprintf(stderr, "%s: error: %s\n", progname, msg);
	else if (level == PCT_LOG_WARNING)
		fprintf(stderr, "%s: warning: %s\n", progname, msg);
	else if (tool_verbose)
		fprintf(stderr, "%s: %s\n", progname, msg);
	else
		return;
	if (detail)
		fprintf(stderr, "%s: detail: %s\n", progname, detail);
	if (hint)
		fprintf(stderr, "%s: hint: %s\n", progname, hint);
}

static void cannot_check(void) __attribute__((noreturn));

static void
cannot_check(void)
{
	fprintf(stderr, "%s: could not check the cluster\n", progname);
	exit(EXIT_CANNOT_CHECK);
}

/* Steps 2 and 3. */
static void
check_state(const char *pgdata)
{
	pct_lock_status ls;
	pid_t		pid;
	unsigned	state;
	bool		exists;

	bool		journal;
	pct_journal_info info;
	const char *what = "key change",
			   *rerun = "pg_alterckey -r";

	if (pct_lock_inspect(pgdata, &ls, &pid) != PCT_OK ||
		pct_journal_exists(pgdata, &journal) != PCT_OK)
		cannot_check();
	if (journal)
	{
		if (pct_journal_peek(pgdata, &info) != PCT_OK)
			cannot_check();
		what = pct_op_str(info.op);
		rerun = pct_op_command(info.op);
	}
	if (ls == PCT_LOCK_FREE && !journal)
		check_ok("no operation in progress (no lock file)");
	else if (ls == PCT_LOCK_HELD)
		check_fail("operation in progress (process %d): lock file \"%s/%s/%s\"",
				   (int) pid, pgdata, PCT_KEYDIR, PCT_LOCK_FILE);
	else if (ls == PCT_LOCK_STALE)
		check_fail("interrupted operation (%s): lock file \"%s/%s/%s\" was left by process %d, which is gone; run %s",
				   what, pgdata, PCT_KEYDIR, PCT_LOCK_FILE, (int) pid, rerun);
	else
		check_fail("interrupted operation (%s): its journal is present without a lock file; run %s",
				   what, rerun);

	if (pct_keydir_state(pgdata, &state, &exists) != PCT_OK)
		cannot_check();
	if (!exists)
		check_fail("key directory \"%s/%s\" is missing", pgdata, PCT_KEYDIR);
	if (state & PCT_KD_NEW)
		check_fail("\"new\" directory exists in \"%s/%s\": a key change was interrupted; run pg_alterckey -r",
				   pgdata, PCT_KEYDIR);
	if (state & PCT_KD_OLD)
		check_fail("\"old\" directory exists in \"%s/%s\": a key change was interrupted; run pg_alterckey -r",
				   pgdata, PCT_KEYDIR);
	if (exists && !(state & (PCT_KD_NEW | PCT_KD_OLD)))
		check_ok("no leftover \"new\" or \"old\" key directory");
}

/* Step 6 for one key file. */
static void
check_unwrap(const char *livedir, int gen, int id, const uint8_t *kek,
			 int keylen, pct_datakey *dk)
{
	char		path[1200];
	uint8_t		buf[4096];
	size_t		len = 0;
	pct_rc		rc;

	snprintf(path, sizeof(path), "%s/%s", livedir, pct_keyfile_name(gen, id));
	captured[0] = '\0';
	capturing = true;
	rc = pct_read_file(path, buf, sizeof(buf), &len);
	if (rc == PCT_OK)
		rc = pct_keyfile_unwrap(path, gen, id, buf, len, kek, dk);
	capturing = false;
	pct_wipe(buf, sizeof(buf));
	if (rc != PCT_OK)
	{
		check_fail("%s", captured[0] ? captured : pct_rc_str(rc));
		return;
	}
	check_ok("key file \"%s\" unwraps with the cluster key", path);
	if (dk->keylen != keylen)
		check_fail("key length of %d bits in \"%s\" does not match pg_control (%d bits)",
				   dk->keylen * 8, path, keylen * 8);
	else
		check_ok("key length of \"%s\" matches pg_control (%d bits)", path,
				 keylen * 8);
	pct_wipe(dk, sizeof(*dk));
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"pgdata", required_argument, NULL, 'D'},
		{"key-command", required_argument, NULL, 'c'},
		{"authprompt", no_argument, NULL, 'R'},
		{"timeout", required_argument, NULL, 't'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0}
	};
	const char *datadir_opt = NULL;
	char	   *command = NULL,
			   *config_command = NULL;
	bool		authprompt = false;
	int			timeout = 60;
	int			c,
				major,
				gen,
				problems,
				keylen;
	char	   *pgdata;
	char		livedir[1100];
	pct_control *ctl;
	uid_t		owner;
	uint8_t    *kek;
	pct_datakey *dk;

	tool_start(argc, argv, usage);
	pct_set_log(log_cb, NULL);
	while ((c = getopt_long(argc, argv, "D:c:Rt:qvV", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'D':
				datadir_opt = optarg;
				break;
			case 'c':
				command = optarg;
				break;
			case 'R':
				authprompt = true;
				break;
			case 't':
				timeout = tool_parse_secs(optarg, "-t/--timeout");
				break;
			case 'q':
				quiet = true;
				break;
			case 'v':
				tool_verbose++;
				break;
			case 'V':
				tool_version();
			default:
				tool_usage_error("%s", "");
		}
	}
	tool_trailing_datadir(argc, argv, optind, &datadir_opt);

	/* exit status 2 for every way of not getting to check */
	if (geteuid() == 0)
	{
		tool_error("Run it as the user that owns the data directory.",
				   "cannot be run as root");
		exit(EXIT_CANNOT_CHECK);
	}
	if (datadir_opt == NULL || datadir_opt[0] == '\0')
		datadir_opt = getenv("PGDATA");
	if (datadir_opt == NULL || datadir_opt[0] == '\0')
	{
		tool_error(NULL, "no data directory specified");
		fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
		exit(EXIT_CANNOT_CHECK);
	}
	pgdata = realpath(datadir_opt, NULL);
	if (pgdata == NULL)
	{
		tool_error(NULL, "could not access data directory \"%s\": %m",
				   datadir_opt);
		exit(EXIT_CANNOT_CHECK);
	}
	if (pct_disable_core_dumps() != PCT_OK)
		cannot_check();

	/* 1. pg_control */
	ctl = malloc(sizeof(*ctl));
	if (ctl == NULL ||
		pct_cluster_check_dir(pgdata, &major) != PCT_OK ||
		pct_control_read(pgdata, ctl) != PCT_OK ||
		pct_cluster_owner(pgdata, &owner) != PCT_OK)
		cannot_check();
	if (ctl->version != PCT_CONTROL_VERSION_ENCRYPTED)
	{
		tool_error(NULL, "cluster is not encrypted: pg_control version is %u",
				   (unsigned) ctl->version);
		exit(EXIT_CANNOT_CHECK);
	}

	/* 2, 3 */
	check_state(pgdata);

	/* 4 */
	snprintf(livedir, sizeof(livedir), "%s/%s/%s", pgdata, PCT_KEYDIR,
			 PCT_KEYDIR_LIVE);
	if (pct_keydir_check(livedir, owner, &gen, print_finding, NULL,
						 &problems) != PCT_OK)
		cannot_check();
	if (problems == 0)
		check_ok("key files in \"%s\" complete (generation %d), owned by the cluster owner, not writable by others",
				 livedir, gen);
	if (gen == 0)
		exit(EXIT_CHECK_FAILED);

	/* 5 */
	keylen = pct_control_keylen(ctl, gen);
	if (keylen == 0)
	{
		check_fail("pg_control encryption setting %u is invalid for generation %d key files (key length unknown)",
				   (unsigned) ctl->encryption, gen);
		exit(EXIT_CHECK_FAILED);
	}
	check_ok("pg_control asks for %d-bit keys", keylen * 8);

	/* 6 */
	if (command == NULL)
	{
		char	   *file = NULL;
		int			line;

		if (pct_config_get(pgdata, "cluster_key_command", &config_command,
						   &file, &line) != PCT_OK)
			cannot_check();
		free(file);
		command = config_command;
		if (command == NULL || command[0] == '\0')
		{
			tool_error("Give the command with -c.",
					   "cluster_key_command is not set in the cluster's configuration");
			exit(EXIT_CANNOT_CHECK);
		}
	}
	kek = pct_secure_alloc(PCT_KEK_LEN);
	dk = pct_secure_alloc(sizeof(*dk));
	if (kek == NULL || dk == NULL)
		cannot_check();
	if (tool_get_kek(command, livedir, NULL, authprompt, timeout, kek) != PCT_OK)
		cannot_check();
	for (int id = 0; id < PCT_NUM_KEYS; id++)
		check_unwrap(livedir, gen, id, kek, keylen, dk);
	pct_secure_free(kek, PCT_KEK_LEN);
	pct_secure_free(dk, sizeof(*dk));
	free(config_command);
	free(ctl);
	free(pgdata);
	return failures ? EXIT_CHECK_FAILED : 0;
}
