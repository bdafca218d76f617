/*
 * pg_encrypt_cluster.c
 *	  Encrypt an existing, cleanly stopped PostgreSQL cluster in place, or
 *	  take it back with --decrypt.
 *
 * Theory of operation (encryption):
 *	1. Check everything before the first write: not root, the cluster
 *	   owner, a data directory of a supported version, pg_control version
 *	   1300, a clean shutdown, wal_level above minimal, no server running,
 *	   the cluster key command, the file map (no hard links), space for
 *	   the journal.  With -n, report the plan and stop.
 *	2. Create pg_cryptokeys and take its lock.
 *	3. Make the relation and WAL keys (OpenSSL's CSPRNG) and stage them,
 *	   wrapped with the cluster key, in pg_cryptokeys/new (durable).
 *	4. Create the journal (the engine's plan).
 *	5. Convert pg_control to version 1400 with the method: from here on a
 *	   stock server refuses the cluster and the lock keeps a patched one
 *	   out, before the first data byte changes.
 *	6. Rewrite every relation page and WAL page (engine.c).
 *	7. Store the unloggedLSN the plan used up; rename new to live; set
 *	   cluster_key_command in the configuration; remove the journal; remove
 *	   the lock.
 * Decryption: check; lock; create the journal; rewrite; convert pg_control
 * to 1300; remove cluster_key_command; remove live/, the journal, the lock
 * and pg_cryptokeys.
 *
 * Interruption: rerunning the same command resumes from the journal with
 * the keys staged (or installed) for it.  A pg_cryptokeys directory on a
 * version 1300 cluster without a journal can only be left by an
 * interrupted step 2 or 3 (or the last steps of a decryption), when no data
 * has changed, so it is removed and the command starts again.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "tool_common.h"

#define CONFIG_NAME "cluster_key_command"

static volatile sig_atomic_t stop_requested;
static bool mode_given;			/* --resilience was given */
static bool show_progress;
static bool isatty_err;

static void
usage(void)
{
	printf("%s encrypts an existing PostgreSQL cluster in place, or decrypts it.\n\n", progname);
	printf("Usage:\n");
	printf("  %s [OPTION]... -D DATADIR -c CLUSTER_KEY_COMMAND\n", progname);
	printf("  %s [OPTION]... --decrypt -D DATADIR [-c CLUSTER_KEY_COMMAND]\n", progname);
	printf("\nOptions:\n");
	printf(" [-D, --pgdata=]DATADIR  data directory (default: environment variable PGDATA)\n");
	printf("  -c, --key-command=CMD  cluster key command; encryption writes it to the\n");
	printf("                         configuration (default for --decrypt: the one there)\n");
	printf("  -K, --cipher=CIPHER    aes128, aes192 or aes256 (default: aes256)\n");
	printf("      --decrypt          decrypt an encrypted cluster\n");
	printf("      --resilience=MODE  checksum (default) or journal: how an interruption\n");
	printf("                         is recovered\n");
	printf("  -R, --authprompt       let the key command prompt on the terminal (%%R)\n");
	printf("  -t, --timeout=SECS     stop the key command after SECS seconds (default: no limit)\n");
	printf("  -j, --jobs=NUM         use NUM worker threads (default: number of CPUs)\n");
	printf("  -P, --progress         show progress information\n");
	printf("  -n, --dry-run          check and report what would be done, change nothing\n");
	printf("  -N, --no-sync          do not wait for changes to reach disk (unsafe; tests only)\n");
	printf("  -v, --verbose          report each step\n");
	printf("  -V, --version          output version information, then exit\n");
	printf("  -?, --help             show this help, then exit\n");
	printf("\nRerunning an interrupted command resumes it.\n");
}

static void
on_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

static bool
progress_cb(void *arg, const pct_progress *p)
{
	static double last = -1;
	double		mb = (double) p->done_bytes / (1024 * 1024);
	double		total = (double) p->total_bytes / (1024 * 1024);

	(void) arg;
	if (show_progress && (p->elapsed - last >= 1.0 || p->done_bytes == p->total_bytes))
	{
		last = p->elapsed;
		fprintf(stderr, "%.0f/%.0f MB (%d%%) rewritten, %.0f MB/s%s",
				mb, total, total > 0 ? (int) (100.0 * mb / total) : 100,
				p->elapsed > 0 ? mb / p->elapsed : 0.0, isatty_err ? "\r" : "\n");
	}
	return !stop_requested;
}

static void
verbose(const char *fmt,...)
__attribute__((format(printf, 1, 2)));

static void
verbose(const char *fmt,...)
{
	va_list		ap;

	if (!tool_verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void no_changes(void) __attribute__((noreturn));
static void interrupted(const char *cmd) __attribute__((noreturn));

static void
no_changes(void)
{
	fprintf(stderr, "%s: no changes were made\n", progname);
	exit(1);
}

/* Failure after the cluster was changed: say how to continue. */
static void
interrupted(const char *cmd)
{
	tool_error(NULL, "the operation did not finish");
	fprintf(stderr, "%s: hint: Fix the cause and run \"%s\" again with the same options to resume.\n",
			progname, cmd);
	exit(1);
}

static int
method_for(const char *name)
{
	if (strcmp(name, "aes128") == 0)
		return PCT_METHOD_AES128;
	if (strcmp(name, "aes192") == 0)
		return PCT_METHOD_AES192;
	if (strcmp(name, "aes256") == 0)
		return PCT_METHOD_AES256;
	return 0;
}

typedef struct cluster
{
	char	   *pgdata;
	char		keydir[1100];
	char		livedir[1200];
	char		newdir[1200];
	int			major;
	pct_control *ctl;
	uid_t		owner;
	mode_t		dirmode,
				filemode;
	pct_filemap fm;
	pct_lock	lock;
} cluster;

/* Preconditions both directions share (step 1). */
static void
check_common(cluster *c, bool need_stopped_state)
{
	pct_server	srv;
	pid_t		pid;

	if (pct_cluster_check_dir(c->pgdata, &c->major) != PCT_OK ||
		pct_control_read(c->pgdata, c->ctl) != PCT_OK ||
		pct_cluster_owner(c->pgdata, &c->owner) != PCT_OK ||
		pct_cluster_modes(c->pgdata, &c->dirmode, &c->filemode) != PCT_OK)
		no_changes();
	if (c->owner != geteuid())
	{
		tool_error("Run it as the user that owns the data directory.",
				   "must be run as the owner of the data directory (uid %u)",
				   (unsigned) c->owner);
		no_changes();
	}
	if (pct_wal_magic(c->major) == 0)
	{
		tool_error(NULL, "PostgreSQL version %d is not supported", c->major);
		no_changes();
	}
	if (pct_cluster_server(c->pgdata, &srv, &pid) != PCT_OK)
		no_changes();
	if (srv == PCT_SERVER_RUNNING)
	{
		if (pid > 0)
			tool_error("Stop the server cleanly (pg_ctl stop -m fast) and try again.",
					   "a server is running on this cluster (PID %d)", (int) pid);
		else
			tool_error("Stop the server cleanly (pg_ctl stop -m fast) and try again.",
					   "a server is running on this cluster");
		no_changes();
	}
	if (need_stopped_state &&
		c->ctl->state != PCT_DB_SHUTDOWNED &&
		c->ctl->state != PCT_DB_SHUTDOWNED_IN_RECOVERY)
	{
		tool_error("Start the server and stop it cleanly (pg_ctl stop -m fast), then try again.",
				   "cluster was not shut down cleanly: state is \"%s\"",
				   pct_dbstate_str(c->ctl->state));
		no_changes();
	}
	snprintf(c->keydir, sizeof(c->keydir), "%s/%s", c->pgdata, PCT_KEYDIR);
	snprintf(c->livedir, sizeof(c->livedir), "%s/%s", c->keydir, PCT_KEYDIR_LIVE);
	snprintf(c->newdir, sizeof(c->newdir), "%s/%s", c->keydir, PCT_KEYDIR_NEW);
}

/*
 * The configuration is changed at the very end (cluster_key_command set
 * or removed): it must parse, and the file that will change must be
 * writable, before anything else changes.
 */
static void
check_config(cluster *c)
{
	char	   *value = NULL,
			   *file = NULL;
	char		conf[1200];
	int			line;

	if (pct_config_get(c->pgdata, CONFIG_NAME, &value, &file, &line) != PCT_OK)
		no_changes();
	snprintf(conf, sizeof(conf), "%s/postgresql.conf", c->pgdata);
	if (access(file ? file : conf, W_OK) != 0)
	{
		tool_error("The cluster_key_command setting is kept there; make the file writable by the cluster owner.",
				   "cannot write configuration file \"%s\": %s",
				   file ? file : conf, strerror(errno));
		free(value);
		free(file);
		no_changes();
	}
	free(value);
	free(file);
}

static void
check_files(cluster *c, pct_resilience mode)
{
	struct statvfs vfs;
	uint64_t	need = pct_engine_journal_space(mode),
				avail;
	const char *hook;

	if (pct_filemap_build(c->pgdata, c->major, c->ctl, &c->fm) != PCT_OK)
		no_changes();
	if (statvfs(c->pgdata, &vfs) != 0)
	{
		tool_error(NULL, "could not check free space of \"%s\": %s", c->pgdata,
				   strerror(errno));
		no_changes();
	}
	avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;
	/* test hook: pretend the file system has this much free space */
	if ((hook = getenv("PCT_TEST_FREE_BYTES")) != NULL)
		avail = strtoull(hook, NULL, 10);
	if (avail < need)
	{
		tool_error(mode == PCT_RESILIENCE_JOURNAL ?
				   "Free some space, or use --resilience=checksum, which needs less." :
				   "Free some space on the file system of the data directory.",
				   "not enough free space for the journal: %llu bytes needed, %llu available",
				   (unsigned long long) need, (unsigned long long) avail);
		no_changes();
	}
}

static void
report_plan(cluster *c, bool decrypt, pct_resilience mode)
{
	size_t		rel = 0,
				wal = 0;

	for (size_t i = 0; i < c->fm.nfiles; i++)
		if (c->fm.files[i].kind == PCT_FILE_RELATION)
			rel++;
		else
			wal++;
	printf("%s would %s %zu relation files (%llu MB) and %zu WAL files (%llu MB) in place\n",
		   progname, decrypt ? "decrypt" : "encrypt", rel,
		   (unsigned long long) (c->fm.relation_bytes >> 20), wal,
		   (unsigned long long) (c->fm.wal_bytes >> 20));
	printf("journal: %s mode, %llu kB in \"%s\"\n",
		   mode == PCT_RESILIENCE_JOURNAL ? "journal" : "checksum",
		   (unsigned long long) ((pct_engine_journal_space(mode) + 1023) >> 10),
		   c->keydir);
}

static void
take_lock(cluster *c, bool take_stale)
{
	pid_t		other;

	if (pct_lock_acquire(c->pgdata, take_stale, &c->lock, &other) != PCT_OK)
		no_changes();
}

/* Get the KEK into secure memory, or exit. */
static uint8_t *
get_kek(const char *cmd, const char *keydir, bool authprompt, int timeout,
		bool changed)
{
	uint8_t    *kek = pct_secure_alloc(PCT_KEK_LEN);

	if (kek == NULL ||
		tool_get_kek(cmd, keydir, NULL, authprompt, timeout, kek) != PCT_OK)
	{
		if (changed)
			exit(1);
		no_changes();
	}
	return kek;
}

static void
print_result(const pct_engine_result *r)
{
	printf("%llu relation pages and %llu WAL pages rewritten, %llu page LSNs replaced\n",
		   (unsigned long long) r->pages_rewritten,
		   (unsigned long long) r->wal_pages_rewritten,
		   (unsigned long long) r->lsns_replaced);
	if (r->checksum_failures)
		tool_error("The pages were rewritten and keep failing their checksum; the server will report them.",
				   "%llu pages failed their checksum before they were rewritten",
				   (unsigned long long) r->checksum_failures);
	if (r->torn_sectors)
		tool_error("Restore those files from a backup.",
				   "%llu sectors were found torn by an earlier interruption",
				   (unsigned long long) r->torn_sectors);
}

static pct_rc
run_engine(cluster *c, pct_engine_opts *o, pct_engine_result *res)
{
	pct_rc		rc = pct_engine_run(c->pgdata, c->ctl, &c->fm, o, res);

	if (show_progress && !o->prepare_only && isatty_err)
		fputc('\n', stderr);
	return rc;
}

/* Remove a leftover of an interrupted start (see the header comment). */
static void
clear_leftover(cluster *c)
{
	verbose("removing \"%s\" left by an interrupted run", c->keydir);
	take_lock(c, true);
	/* the lock file goes with the directory; a crash here leaves another
	 * leftover of the same kind */
	if (pct_durable_rmtree(c->keydir) != PCT_OK)
		exit(1);
	c->lock.path[0] = '\0';	/* nothing left to unlink */
	pct_lock_release(&c->lock);
}

static int
do_encrypt(cluster *c, const char *cmd, int method, pct_resilience mode,
		   bool dry_run, bool authprompt, int timeout, int jobs)
{
	pct_engine_opts o;
	pct_engine_result res;
	pct_keyset *ks = pct_secure_alloc(sizeof(pct_keyset));
	uint8_t    *kek;
	bool		journal = false,
				resume;
	unsigned	state;
	bool		exists;
	int			keylen = method == PCT_METHOD_AES128 ? 16 : method == PCT_METHOD_AES192 ? 24 : 32;

	if (ks == NULL)
		no_changes();
	if (pct_keydir_state(c->pgdata, &state, &exists) != PCT_OK ||
		(exists && pct_journal_exists(c->pgdata, &journal) != PCT_OK))
		no_changes();
	resume = journal;
	if (resume)
	{
		pct_journal_info info;

		if (pct_journal_peek(c->pgdata, &info) != PCT_OK)
			exit(1);
		if (info.op != PCT_OP_ENCRYPT)
		{
			tool_error("Run that command again to finish it first.",
					   "an interrupted %s is pending: run \"%s\"",
					   pct_op_str(info.op), pct_op_command(info.op));
			no_changes();
		}
		if (!mode_given)
			mode = info.mode;
		if (info.method != (uint32_t) method || info.mode != mode)
		{
			tool_error("Use the same -K/--cipher and --resilience as the interrupted run.",
					   "the interrupted encryption used other options");
			no_changes();
		}
		printf("resuming interrupted encryption\n");
	}
	else
	{
		if (c->ctl->version == PCT_CONTROL_VERSION_ENCRYPTED)
		{
			pct_lock_status ls;
			pid_t		pid;

			/*
			 * Only live/ and a lock left by a dead process: an encryption
			 * (or a key change) that finished all but removing its lock.
			 */
			if (state == PCT_KD_LIVE &&
				pct_lock_inspect(c->pgdata, &ls, &pid) == PCT_OK &&
				ls == PCT_LOCK_STALE)
			{
				if (dry_run)
					return 0;
				take_lock(c, true);
				if (pct_lock_release(&c->lock) != PCT_OK)
					exit(1);
				printf("finished interrupted encryption\n");
				return 0;
			}
			tool_error(NULL, "cluster is already encrypted");
			no_changes();
		}
		if (c->ctl->wal_level == PCT_WAL_LEVEL_MINIMAL)
		{
			tool_error("Set wal_level = replica in postgresql.conf, start the server and stop it cleanly, then try again.",
					   "wal_level is minimal: an encrypted cluster needs replica or logical");
			no_changes();
		}
		if (exists && (state & (PCT_KD_LIVE | PCT_KD_OLD)))
		{
			tool_error("Inspect \"pg_cryptokeys\" and remove it if it is not needed.",
					   "cluster is not encrypted but has a key directory with keys in use");
			no_changes();
		}
		{
			/* step 5 must not fail after the keys are staged */
			pct_control trial = *c->ctl;

			if (pct_control_to_1400(&trial, (uint32_t) method) != PCT_OK)
				no_changes();
		}
	}
	check_config(c);
	check_files(c, mode);
	kek = get_kek(cmd, c->livedir, authprompt, timeout, resume);
	if (authprompt && !resume)
	{
		/* a typo here would lock the data under an unknown key */
		uint8_t    *again = pct_secure_alloc(PCT_KEK_LEN);

		if (again == NULL ||
			tool_get_kek(cmd, c->livedir, "Enter it again:", authprompt,
						 timeout, again) != PCT_OK)
			no_changes();
		if (!pct_ct_equal(kek, again, PCT_KEK_LEN))
		{
			tool_error("Run the command again and enter the same passphrase twice.",
					   "the two cluster keys entered differ");
			no_changes();
		}
		pct_secure_free(again, PCT_KEK_LEN);
	}
	if (dry_run)
	{
		report_plan(c, false, mode);
		return 0;
	}
	memset(&o, 0, sizeof(o));
	o.op = PCT_OP_ENCRYPT;
	o.mode = mode;
	o.jobs = jobs;
	o.method = (uint32_t) method;
	o.wal_magic = pct_wal_magic(c->major);
	o.progress = progress_cb;

	if (!resume)
	{
		/* 2, 3 */
		if (exists)
			clear_leftover(c);
		if (pct_durable_mkdir(c->keydir, c->dirmode) != PCT_OK)
			no_changes();
		take_lock(c, false);
		memset(ks, 0, sizeof(*ks));
		ks->generation = PCT_GEN2;
		ks->keylen = keylen;
		if (pct_datakey_generate(PCT_KEY_RELATION, keylen, &ks->key[0]) != PCT_OK ||
			pct_datakey_generate(PCT_KEY_WAL, keylen, &ks->key[1]) != PCT_OK ||
			pct_durable_mkdir(c->newdir, c->dirmode) != PCT_OK ||
			pct_keydir_write(c->newdir, ks, kek, c->filemode, NULL) != PCT_OK)
			interrupted("pg_encrypt_cluster");
		verbose("new data keys staged in \"%s\"", c->newdir);
	}
	else
	{
		take_lock(c, true);
		/* the staged keys, or the installed ones after step 7 began */
		if (pct_keydir_read((state & PCT_KD_NEW) ? c->newdir : c->livedir,
							c->owner, kek, keylen, ks) != PCT_OK)
			exit(1);
	}
	o.out_rel = &ks->key[PCT_KEY_RELATION];
	o.out_wal = &ks->key[PCT_KEY_WAL];

	/* 4, 5 */
	o.prepare_only = true;
	if (run_engine(c, &o, &res) != PCT_OK)
		interrupted("pg_encrypt_cluster");
	if (c->ctl->version == PCT_CONTROL_VERSION_STOCK)
	{
		if (pct_control_to_1400(c->ctl, (uint32_t) method) != PCT_OK ||
			pct_control_write(c->pgdata, c->ctl) != PCT_OK)
			interrupted("pg_encrypt_cluster");
		verbose("pg_control converted to version 1400");
	}

	/* 6 */
	o.prepare_only = false;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (run_engine(c, &o, &res) != PCT_OK)
		interrupted("pg_encrypt_cluster");

	/* 7 */
	if (pct_control_set_unlogged_lsn(c->ctl, res.unlogged_next) != PCT_OK ||
		pct_control_write(c->pgdata, c->ctl) != PCT_OK)
		interrupted("pg_encrypt_cluster");
	if (pct_keydir_state(c->pgdata, &state, &exists) != PCT_OK)
		interrupted("pg_encrypt_cluster");
	if ((state & PCT_KD_NEW) && !(state & PCT_KD_LIVE))
	{
		if (pct_durable_rename(c->newdir, c->livedir) != PCT_OK)
			interrupted("pg_encrypt_cluster");
		pct_durable_step("keys installed");
	}
	if (pct_config_set(c->pgdata, CONFIG_NAME, cmd) != PCT_OK ||
		pct_journal_remove(c->pgdata) != PCT_OK ||
		pct_lock_release(&c->lock) != PCT_OK)
		interrupted("pg_encrypt_cluster");
	pct_secure_free(kek, PCT_KEK_LEN);
	pct_secure_free(ks, sizeof(*ks));
	pct_filemap_free(&c->fm);
	print_result(&res);
	printf("cluster encrypted\n");
	return res.checksum_failures || res.torn_sectors ? 1 : 0;
}

static int
do_decrypt(cluster *c, const char *cmd_opt, pct_resilience mode, bool dry_run,
		   bool authprompt, int timeout, int jobs)
{
	pct_engine_opts o;
	pct_engine_result res;
	pct_keyset *ks = pct_secure_alloc(sizeof(pct_keyset));
	uint8_t    *kek = NULL;
	char	   *cmd = NULL;
	bool		journal = false,
				exists,
				need_keys = true;
	unsigned	state;
	int			gen = 0,
				problems;

	if (ks == NULL)
		no_changes();
	memset(ks, 0, sizeof(*ks));
	if (pct_keydir_state(c->pgdata, &state, &exists) != PCT_OK ||
		(exists && pct_journal_exists(c->pgdata, &journal) != PCT_OK))
		no_changes();
	if (journal)
	{
		pct_journal_info info;

		if (pct_journal_peek(c->pgdata, &info) != PCT_OK)
			exit(1);
		if (info.op != PCT_OP_DECRYPT)
		{
			tool_error("Run that command again to finish it first.",
					   "an interrupted %s is pending: run \"%s\"",
					   pct_op_str(info.op), pct_op_command(info.op));
			no_changes();
		}
		if (mode_given && info.mode != mode)
		{
			tool_error("Use the same --resilience as the interrupted run.",
					   "the interrupted decryption used another resilience mode");
			no_changes();
		}
		printf("resuming interrupted decryption\n");
		need_keys = !info.data_complete;
		mode = info.mode;
	}
	else if (c->ctl->version == PCT_CONTROL_VERSION_STOCK)
	{
		if (exists && !(state & (PCT_KD_LIVE | PCT_KD_NEW | PCT_KD_OLD)))
		{
			/* the last steps of a decryption were interrupted */
			if (dry_run)
				return 0;
			clear_leftover(c);
			printf("finished interrupted decryption\n");
			return 0;
		}
		tool_error(NULL, "cluster is not encrypted: pg_control version is %u",
				   (unsigned) c->ctl->version);
		no_changes();
	}
	else if (!(state & PCT_KD_LIVE) || (state & (PCT_KD_NEW | PCT_KD_OLD)))
	{
		tool_error("Run \"pg_alterckey -r\" to repair it first.",
				   "key directory is in state \"%s\"", pct_keydir_state_str(state));
		no_changes();
	}
	check_config(c);
	check_files(c, mode);
	if (need_keys)
	{
		int			keylen;

		if (pct_keydir_check(c->livedir, c->owner, &gen, NULL, NULL, &problems) != PCT_OK)
			no_changes();
		keylen = pct_control_keylen(c->ctl, gen);
		if (cmd_opt == NULL)
		{
			char	   *file = NULL;
			int			line;

			if (pct_config_get(c->pgdata, CONFIG_NAME, &cmd, &file, &line) != PCT_OK)
				no_changes();
			free(file);
			if (cmd == NULL)
			{
				tool_error("Give it with -c.", "cluster_key_command is not set in the configuration");
				no_changes();
			}
		}
		kek = get_kek(cmd_opt ? cmd_opt : cmd, c->livedir, authprompt, timeout, journal);
		if (pct_keydir_read(c->livedir, c->owner, kek, keylen, ks) != PCT_OK)
		{
			if (journal)
				exit(1);
			no_changes();
		}
	}
	if (dry_run)
	{
		report_plan(c, true, mode);
		return 0;
	}
	/*
	 * A stale lock here is either this operation's (journal) or one left
	 * with only live/ in place (an operation that had finished, or had not
	 * begun): safe to take over.
	 */
	take_lock(c, true);

	memset(&o, 0, sizeof(o));
	o.op = PCT_OP_DECRYPT;
	o.mode = mode;
	o.jobs = jobs;
	o.method = c->ctl->version == PCT_CONTROL_VERSION_ENCRYPTED ? c->ctl->encryption : 0;
	if (journal)
	{
		pct_journal_info info;

		if (pct_journal_peek(c->pgdata, &info) != PCT_OK)
			exit(1);
		o.method = info.method;
	}
	o.wal_magic = pct_wal_magic(c->major);
	o.progress = progress_cb;
	/* a generation 1 server never encrypted data: nothing to rewrite */
	if (need_keys && ks->generation == PCT_GEN2)
	{
		o.in_rel = &ks->key[PCT_KEY_RELATION];
		o.in_wal = &ks->key[PCT_KEY_WAL];
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (need_keys && run_engine(c, &o, &res) != PCT_OK)
		interrupted("pg_encrypt_cluster --decrypt");
	if (!need_keys)
		memset(&res, 0, sizeof(res));

	if (c->ctl->version == PCT_CONTROL_VERSION_ENCRYPTED &&
		(pct_control_to_1300(c->ctl) != PCT_OK ||
		 pct_control_write(c->pgdata, c->ctl) != PCT_OK))
		interrupted("pg_encrypt_cluster --decrypt");
	verbose("pg_control converted to version 1300");
	if (pct_config_set(c->pgdata, CONFIG_NAME, NULL) != PCT_OK)
		interrupted("pg_encrypt_cluster --decrypt");
	if ((state & PCT_KD_LIVE) && pct_durable_rmtree(c->livedir) != PCT_OK)
		interrupted("pg_encrypt_cluster --decrypt");
	if (pct_journal_remove(c->pgdata) != PCT_OK ||
		pct_lock_release(&c->lock) != PCT_OK ||
		pct_durable_remove(c->keydir) != PCT_OK)
		interrupted("pg_encrypt_cluster --decrypt");
	if (kek)
		pct_secure_free(kek, PCT_KEK_LEN);
	pct_secure_free(ks, sizeof(*ks));
	free(cmd);
	pct_filemap_free(&c->fm);
	print_result(&res);
	printf("cluster decrypted\n");
	return res.checksum_failures || res.torn_sectors ? 1 : 0;
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"pgdata", required_argument, NULL, 'D'},
		{"key-command", required_argument, NULL, 'c'},
		{"cipher", required_argument, NULL, 'K'},
		{"decrypt", no_argument, NULL, 1},
		{"resilience", required_argument, NULL, 2},
		{"authprompt", no_argument, NULL, 'R'},
		{"timeout", required_argument, NULL, 't'},
		{"jobs", required_argument, NULL, 'j'},
		{"progress", no_argument, NULL, 'P'},
		{"dry-run", no_argument, NULL, 'n'},
		{"no-sync", no_argument, NULL, 'N'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0}
	};
	const char *datadir_opt = NULL,
			   *cmd = NULL;
	int			method = PCT_METHOD_AES256,
				timeout = 0,
				ch;
	long		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int			jobs = ncpu > 0 ? (int) ncpu : 1;
	bool		decrypt = false,
				dry_run = false,
				authprompt = false,
				cipher_given = false;
	pct_resilience mode = PCT_RESILIENCE_CHECKSUM;
	cluster		c;

	tool_start(argc, argv, usage);
	while ((ch = getopt_long(argc, argv, "D:c:K:Rt:j:PnNvV", long_options, NULL)) != -1)
	{
		switch (ch)
		{
			case 'D':
				datadir_opt = optarg;
				break;
			case 'c':
				cmd = optarg;
				break;
			case 'K':
				cipher_given = true;
				method = method_for(optarg);
				if (method == 0)
					tool_usage_error("invalid cipher \"%s\": use aes128, aes192 or aes256", optarg);
				break;
			case 1:
				decrypt = true;
				break;
			case 2:
				mode_given = true;
				if (strcmp(optarg, "checksum") == 0)
					mode = PCT_RESILIENCE_CHECKSUM;
				else if (strcmp(optarg, "journal") == 0)
					mode = PCT_RESILIENCE_JOURNAL;
				else
					tool_usage_error("invalid resilience mode \"%s\": use checksum or journal", optarg);
				break;
			case 'R':
				authprompt = true;
				break;
			case 't':
				timeout = tool_parse_secs(optarg, "-t/--timeout");
				break;
			case 'j':
				jobs = tool_parse_secs(optarg, "-j/--jobs");
				if (jobs < 1 || jobs > 64)
					tool_usage_error("-j/--jobs must be in range 1..64");
				break;
			case 'P':
				show_progress = true;
				break;
			case 'n':
				dry_run = true;
				break;
			case 'N':
				pct_set_sync(false);
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
	if (!decrypt && cmd == NULL)
		tool_usage_error("a cluster key command is required (-c)");
	if (decrypt && cipher_given)
		tool_usage_error("-K/--cipher cannot be used with --decrypt");

	tool_refuse_root();
	memset(&c, 0, sizeof(c));
	c.lock.fd = -1;
	c.pgdata = tool_pgdata(datadir_opt);
	c.ctl = malloc(sizeof(pct_control));
	if (c.ctl == NULL || pct_disable_core_dumps() != PCT_OK)
		exit(1);
	isatty_err = isatty(fileno(stderr));
	tool_umask_from_pgdata(c.pgdata);
	{
		/* resuming needs no clean-shutdown state: pg_control is ours */
		char		jpath[1200];

		snprintf(jpath, sizeof(jpath), "%s/%s/%s", c.pgdata, PCT_KEYDIR,
				 PCT_JOURNAL_FILE);
		check_common(&c, access(jpath, F_OK) != 0);
	}
	ch = decrypt ? do_decrypt(&c, cmd, mode, dry_run, authprompt, timeout, jobs) :
		do_encrypt(&c, cmd, method, mode, dry_run, authprompt, timeout, jobs);
	pct_filemap_free(&c.fm);
	free(c.ctl);
	free(c.pgdata);
	return ch;
}
