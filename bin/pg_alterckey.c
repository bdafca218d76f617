/*
 * pg_alterckey.c
 *	  Change the cluster key (KEK) of an encrypted PostgreSQL cluster, or
 *	  repair an interrupted change.
 *
 * Theory of operation:
 *	1. Check the data directory, pg_control (version 1400: encrypted) and
 *	   that pg_cryptokeys exists, with no journal of an interrupted bulk
 *	   operation; run as the cluster owner, never as root.
 *	2. Take the lock file pg_cryptokeys/pg_alterckey.pid (a stale one left
 *	   by a dead process is taken over).
 *	3. Repair any leftover state of an interrupted change (the table in
 *	   keydir.c).  This comes before the key commands run, because their %d
 *	   names live/ and new/, which must be in their final places.  With -r,
 *	   stop here.
 *	4. Run OLD_COMMAND (%d = live/), create new/, run NEW_COMMAND (%d =
 *	   new/; it may keep files there), twice with -R so that a mistyped
 *	   passphrase is caught.  Refuse identical keys.
 *	5. Unwrap both keys of live/ with the old KEK, after the checks of
 *	   FORMAT 1.4 and against the key length in pg_control.
 *	6. Wrap them with the new KEK into new/ in the same generation and copy
 *	   the other files of live/ (durable).
 *	7. Swap: live -> old, new -> live, remove old (each durable).
 *	8. With --update-config, set cluster_key_command to NEW_COMMAND.
 *	9. Remove the lock file.
 * Any failure before step 7 removes new/ again and leaves the key directory
 * as it was.  An interruption at any point is finished or undone by
 * "pg_alterckey -r" (or by the next pg_alterckey run), after which the keys
 * unwrap with exactly one of the two cluster keys.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool_common.h"

static void
usage(void)
{
	printf("%s changes the cluster key of an encrypted PostgreSQL cluster.\n\n", progname);
	printf("Usage:\n");
	printf("  %s [OPTION]... OLD_COMMAND NEW_COMMAND [[-D] DATADIR]\n", progname);
	printf("  %s [OPTION]... -r [[-D] DATADIR]\n", progname);
	printf("\nOptions:\n");
	printf(" [-D, --pgdata=]DATADIR  data directory (default: environment variable PGDATA)\n");
	printf("  -r, --repair           repair an interrupted key change, then exit\n");
	printf("  -R, --authprompt       let the key commands prompt on the terminal (%%R)\n");
	printf("  -t, --timeout=SECS     stop a key command after SECS seconds (default: no limit)\n");
	printf("      --update-config    also set cluster_key_command to NEW_COMMAND in the\n");
	printf("                         configuration file that defines it\n");
	printf("  -N, --no-sync          do not wait for changes to reach disk (unsafe; tests only)\n");
	printf("  -v, --verbose          report each step\n");
	printf("  -V, --version          output version information, then exit\n");
	printf("  -?, --help             show this help, then exit\n");
	printf("\nOLD_COMMAND and NEW_COMMAND are cluster key commands: they print the key as\n");
	printf("64 hexadecimal digits and may use %%d (key directory), %%p (prompt),\n");
	printf("%%R (terminal file descriptor, with -R) and %%%%.\n");
}

static void
verbose(const char *msg, const char *arg)
{
	if (tool_verbose)
		fprintf(stderr, "%s: %s%s%s\n", progname, msg, arg ? " " : "",
				arg ? arg : "");
}

/* State to undo on failure. */
static pct_lock lock = {-1, NULL};
static char newdir[1024];
static bool newdir_ours;
static bool repaired_state;

/* Leave the cluster as it was found (before the swap), and exit 1. */
static void fail_unchanged(void) __attribute__((noreturn));

static void
fail_unchanged(void)
{
	if (newdir_ours && pct_durable_rmtree(newdir) != PCT_OK)
		tool_error(NULL, "could not remove \"%s\"; run \"%s -r\"", newdir,
				   progname);
	else if (repaired_state)
		fprintf(stderr, "%s: the leftover key directory state was repaired; no other changes were made\n",
				progname);
	else
		fprintf(stderr, "%s: no changes were made\n", progname);
	pct_lock_release(&lock);
	exit(1);
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"pgdata", required_argument, NULL, 'D'},
		{"repair", no_argument, NULL, 'r'},
		{"authprompt", no_argument, NULL, 'R'},
		{"timeout", required_argument, NULL, 't'},
		{"update-config", no_argument, NULL, 1},
		{"no-sync", no_argument, NULL, 'N'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0}
	};
	const char *datadir_opt = NULL;
	const char *old_cmd = NULL,
			   *new_cmd = NULL;
	bool		repair = false,
				authprompt = false,
				update_config = false;
	int			timeout = 0;
	int			c,
				nargs;
	char	   *pgdata;
	char		livedir[1024];
	pct_control *ctl;
	pct_repair	repaired;
	unsigned	state;
	bool		exists;
	uid_t		owner;
	mode_t		dirmode,
				filemode;
	uint8_t    *kek_old,
			   *kek_new;
	pct_keyset *ks;
	pid_t		other;
	int			gen,
				problems,
				keylen;

	tool_start(argc, argv, usage);

	while ((c = getopt_long(argc, argv, "D:rRt:NvV", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'D':
				datadir_opt = optarg;
				break;
			case 'r':
				repair = true;
				break;
			case 'R':
				authprompt = true;
				break;
			case 't':
				timeout = tool_parse_secs(optarg, "-t/--timeout");
				break;
			case 1:
				update_config = true;
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
	nargs = argc - optind;
	if (!repair)
	{
		if (nargs < 2)
			tool_usage_error("OLD_COMMAND and NEW_COMMAND are required");
		old_cmd = argv[optind++];
		new_cmd = argv[optind++];
	}
	else if (update_config)
		tool_usage_error("--update-config cannot be used with -r/--repair");
	tool_trailing_datadir(argc, argv, optind, &datadir_opt);

	tool_refuse_root();
	pgdata = tool_pgdata(datadir_opt);
	if (pct_disable_core_dumps() != PCT_OK)
		exit(1);

	/* 1. preconditions */
	ctl = malloc(sizeof(*ctl));
	if (ctl == NULL)
	{
		tool_error(NULL, "out of memory");
		exit(1);
	}
	if (pct_cluster_check_dir(pgdata, &c) != PCT_OK ||
		pct_control_read(pgdata, ctl) != PCT_OK ||
		pct_cluster_owner(pgdata, &owner) != PCT_OK ||
		pct_cluster_modes(pgdata, &dirmode, &filemode) != PCT_OK ||
		pct_keydir_state(pgdata, &state, &exists) != PCT_OK)
		fail_unchanged();
	/*
	 * An interrupted bulk operation owns the cluster (and its stale lock,
	 * which must not be taken over and then released), whatever state
	 * pg_control is in.
	 */
	{
		bool		journal;
		pct_journal_info info;

		if (pct_journal_exists(pgdata, &journal) != PCT_OK)
			fail_unchanged();
		if (journal)
		{
			if (pct_journal_peek(pgdata, &info) != PCT_OK)
				fail_unchanged();
			tool_error("Run that command again to finish it first.",
					   "an interrupted %s is pending: run \"%s\"",
					   pct_op_str(info.op), pct_op_command(info.op));
			fail_unchanged();
		}
	}
	if (ctl->version != PCT_CONTROL_VERSION_ENCRYPTED)
	{
		/* pg_encrypt_cluster stopped before its journal was made: it
		 * clears what it left when it runs again */
		if (exists)
			tool_error("Run \"pg_encrypt_cluster\" again to encrypt it; it clears the leftover first.",
					   "cluster is not encrypted (pg_control version %u), but %s exists: an interrupted encryption left it",
					   (unsigned) ctl->version, PCT_KEYDIR);
		else
			tool_error("Encrypt it with pg_encrypt_cluster first.",
					   "cluster is not encrypted: pg_control version is %u",
					   (unsigned) ctl->version);
		fail_unchanged();
	}
	if (!exists)
	{
		tool_error("Restore pg_cryptokeys from a backup.",
				   "cluster is not encrypted: it has no %s directory",
				   PCT_KEYDIR);
		fail_unchanged();
	}
	if (owner != geteuid())
	{
		tool_error("Run it as the user that owns the data directory.",
				   "must be run as the owner of the data directory (uid %u)",
				   (unsigned) owner);
		fail_unchanged();
	}
	if (update_config)
	{
		char	   *value = NULL,
				   *file = NULL;
		int			line;

		/* the configuration must parse before anything changes */
		if (pct_config_get(pgdata, "cluster_key_command", &value, &file,
						   &line) != PCT_OK)
			fail_unchanged();
		free(value);
		free(file);
	}
	tool_umask_from_pgdata(pgdata);
	snprintf(livedir, sizeof(livedir), "%s/%s/%s", pgdata, PCT_KEYDIR,
			 PCT_KEYDIR_LIVE);
	snprintf(newdir, sizeof(newdir), "%s/%s/%s", pgdata, PCT_KEYDIR,
			 PCT_KEYDIR_NEW);

	/* 2. lock */
	if (pct_lock_acquire(pgdata, true, &lock, &other) != PCT_OK)
		fail_unchanged();
	verbose("lock taken", NULL);

	/* 3. repair */
	if (pct_keydir_repair(pgdata, &repaired) != PCT_OK)
		fail_unchanged();
	repaired_state = repaired != PCT_REPAIR_NONE;
	if (repair || repaired_state)
		printf("%s\n", pct_repair_str(repaired));
	if (repair)
	{
		if (pct_lock_release(&lock) != PCT_OK)
			exit(1);
		exit(0);
	}

	/* 4. the two cluster keys */
	kek_old = pct_secure_alloc(PCT_KEK_LEN);
	kek_new = pct_secure_alloc(PCT_KEK_LEN);
	ks = pct_secure_alloc(sizeof(*ks));
	if (kek_old == NULL || kek_new == NULL || ks == NULL)
		fail_unchanged();
	verbose("running old cluster key command", NULL);
	if (tool_get_kek(old_cmd, livedir, "Enter current cluster key passphrase:",
					 authprompt, timeout, kek_old) != PCT_OK)
		fail_unchanged();
	if (pct_durable_mkdir(newdir, dirmode) != PCT_OK)
		fail_unchanged();
	newdir_ours = true;
	pct_durable_step("new key directory created");
	verbose("running new cluster key command", NULL);
	if (tool_get_kek(new_cmd, newdir, "Enter new cluster key passphrase:",
					 authprompt, timeout, kek_new) != PCT_OK)
		fail_unchanged();
	if (authprompt)
	{
		/* a typo in a new passphrase would lock the keys away */
		uint8_t    *again = pct_secure_alloc(PCT_KEK_LEN);

		if (again == NULL ||
			tool_get_kek(new_cmd, newdir, "Enter new cluster key passphrase again:",
						 authprompt, timeout, again) != PCT_OK)
			fail_unchanged();
		if (!pct_ct_equal(kek_new, again, PCT_KEK_LEN))
		{
			tool_error("Run the command again and enter the same new passphrase twice.",
					   "the two new cluster keys entered differ");
			fail_unchanged();
		}
		pct_secure_free(again, PCT_KEK_LEN);
	}
	if (pct_ct_equal(kek_old, kek_new, PCT_KEK_LEN))
	{
		tool_error("Give a NEW_COMMAND that prints a different key.",
				   "old and new cluster keys are identical");
		fail_unchanged();
	}

	/* 5. unwrap live/ */
	if (pct_keydir_check(livedir, owner, &gen, NULL, NULL, &problems) != PCT_OK)
		fail_unchanged();
	keylen = pct_control_keylen(ctl, gen);
	if (gen != 0 && keylen == 0)
	{
		tool_error(NULL, "pg_control holds an invalid encryption setting %u",
				   (unsigned) ctl->encryption);
		fail_unchanged();
	}
	if (pct_keydir_read(livedir, owner, kek_old, keylen, ks) != PCT_OK)
		fail_unchanged();
	verbose("unwrapped data keys of", livedir);

	/* 6. stage new/ */
	if (pct_keydir_write(newdir, ks, kek_new, filemode, livedir) != PCT_OK)
		fail_unchanged();
	pct_secure_free(ks, sizeof(*ks));
	pct_secure_free(kek_old, PCT_KEK_LEN);
	pct_secure_free(kek_new, PCT_KEK_LEN);
	verbose("new key files written to", newdir);

	/* 7. swap: from here on, failures are finished by -r, not undone */
	newdir_ours = false;
	if (pct_keydir_swap(pgdata) != PCT_OK)
	{
		tool_error("Run \"pg_alterckey -r\" to finish the change.",
				   "key change interrupted");
		exit(1);
	}
	verbose("new keys installed", NULL);

	/* 8. configuration */
	if (update_config)
	{
		char	   *value = NULL,
				   *file = NULL;
		int			line;

		if (pct_config_set(pgdata, "cluster_key_command", new_cmd) != PCT_OK ||
			pct_config_get(pgdata, "cluster_key_command", &value, &file,
						   &line) != PCT_OK)
		{
			tool_error("Set cluster_key_command to the new command by hand.",
					   "cluster key changed, but the configuration was not updated");
			pct_lock_release(&lock);
			exit(1);
		}
		printf("cluster_key_command updated in \"%s\"\n", file);
		free(value);
		free(file);
	}

	/* 9. unlock */
	if (pct_lock_release(&lock) != PCT_OK)
		exit(1);
	printf("cluster key changed\n");
	free(ctl);
	free(pgdata);
	return 0;
}
