/*
 * check_keydir.c
 *	  Unit tests of keydir.c: states, the checks of FORMAT 1.4, reading,
 *	  staging with extras, the swap and every state of the repair table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "lib/pct_internal.h"

static char *pgdata;

static void
setup(void)
{
	char	   *top = unit_mkdtemp();

	if (asprintf(&pgdata, "%s/data", top) < 0)
		ck_abort();
	free(top);
	unit_capture_log();
}

static void
teardown(void)
{
	char	   *top = strdup(pgdata);

	*strrchr(top, '/') = '\0';
	unit_rmtree(top);
	free(top);
	free(pgdata);
}

static void
kpath(char *buf, const char *sub, const char *file)
{
	snprintf(buf, 4096, "%s/pg_cryptokeys/%s%s%s", pgdata, sub,
			 file ? "/" : "", file ? file : "");
}

/* Collects findings. */
static char findings[8192];
static void
collect(void *arg, const char *path, const char *what)
{
	size_t		n = strlen(findings);

	(void) arg;
	snprintf(findings + n, sizeof(findings) - n, "%s|%s\n", what, path);
}

static int
check_live(int *gen)
{
	char		dir[4096];
	int			problems = -1;

	findings[0] = '\0';
	kpath(dir, "live", NULL);
	ck_assert_int_eq(pct_keydir_check(dir, geteuid(), gen, collect, NULL, &problems), PCT_OK);
	return problems;
}

START_TEST(states)
{
	unsigned	st;
	bool		exists;
	char		p[4096];

	ck_assert_int_eq(pct_keydir_state(pgdata, &st, &exists), PCT_OK);
	ck_assert(!exists);
	unit_copy_vector("b_aes128", pgdata);
	ck_assert_int_eq(pct_keydir_state(pgdata, &st, &exists), PCT_OK);
	ck_assert(exists);
	ck_assert_uint_eq(st, PCT_KD_LIVE);
	kpath(p, "new", NULL);
	mkdir(p, 0700);
	kpath(p, "old", NULL);
	mkdir(p, 0700);
	ck_assert_int_eq(pct_keydir_state(pgdata, &st, &exists), PCT_OK);
	ck_assert_uint_eq(st, PCT_KD_LIVE | PCT_KD_NEW | PCT_KD_OLD);
	ck_assert_str_eq(pct_keydir_state_str(st), "live, new and old");
}
END_TEST

START_TEST(checks_of_format_1_4)
{
	char		p[4096],
				q[4096];
	int			gen;

	unit_copy_vector("c1_aes192", pgdata);
	ck_assert_int_eq(check_live(&gen), 0);
	ck_assert_int_eq(gen, PCT_GEN1);

	/* duplicate: "00" names key 0 too */
	kpath(p, "live", "0");
	kpath(q, "live", "00");
	ck_assert_int_eq(link(p, q), 0);
	ck_assert_int_eq(check_live(&gen), 1);
	ck_assert_ptr_nonnull(strstr(findings, "duplicate key file"));
	unlink(q);
	/* a digit name other than 0 and 1 */
	kpath(q, "live", "2");
	unit_write_file(q, "x", 1, 0600);
	ck_assert_int_eq(check_live(&gen), 1);
	ck_assert_ptr_nonnull(strstr(findings, "unexpected key file name"));
	unlink(q);
	/* a non-key file is ignored */
	kpath(q, "live", "README.kms");
	unit_write_file(q, "x", 1, 0600);
	ck_assert_int_eq(check_live(&gen), 0);
	/* group/world writable */
	chmod(p, 0666);
	ck_assert_int_eq(check_live(&gen), 1);
	ck_assert_ptr_nonnull(strstr(findings, "lets group or others write it"));
	chmod(p, 0600);
	/* owner */
	{
		int			problems;
		char		dir[4096];

		findings[0] = '\0';
		kpath(dir, "live", NULL);
		ck_assert_int_eq(pct_keydir_check(dir, geteuid() + 1, &gen, collect, NULL, &problems), PCT_OK);
		ck_assert_int_eq(problems, 3);	/* dir and both files */
		ck_assert_ptr_nonnull(strstr(findings, "not the cluster owner"));
	}
	/* symlink */
	kpath(q, "live", "1.real");
	kpath(p, "live", "1");
	ck_assert_int_eq(rename(p, q), 0);
	ck_assert_int_eq(symlink("1.real", p), 0);
	ck_assert_int_eq(check_live(&gen), 1);
	ck_assert_ptr_nonnull(strstr(findings, "symbolic link"));
	/* missing */
	unlink(p);
	ck_assert_int_eq(check_live(&gen), 1);
	ck_assert_ptr_nonnull(strstr(findings, "WAL key file \"1\" is missing"));
	/* mixed generations */
	kpath(p, "live", "wal.wkey");
	unit_write_file(p, "x", 1, 0600);
	kpath(p, "live", "1");
	ck_assert_int_eq(rename(q, p), 0);
	ck_assert_int_ge(check_live(&gen), 1);
	ck_assert_ptr_nonnull(strstr(findings, "both generations"));
}
END_TEST

START_TEST(read_and_lengths)
{
	char		dir[4096];
	uint8_t		kek[PCT_KEK_LEN],
				dek[PCT_MAX_KEY_LEN];
	pct_keyset	ks;
	int			n;

	unit_copy_vector("b_aes192", pgdata);
	unit_vector_kek("b_aes192", kek);
	kpath(dir, "live", NULL);
	ck_assert_int_eq(pct_keydir_read(dir, geteuid(), kek, 24, &ks), PCT_OK);
	ck_assert_int_eq(ks.generation, PCT_GEN2);
	ck_assert_int_eq(ks.keylen, 24);
	for (int id = 0; id < 2; id++)
	{
		n = unit_vector_dek("b_aes192", id, dek);
		ck_assert_int_eq(n, 24);
		ck_assert_mem_eq(PCT_DATAKEY_BYTES(&ks.key[id]), dek, 24);
	}
	/* pg_control says 256 bits */
	ck_assert_int_eq(pct_keydir_read(dir, geteuid(), kek, 32, &ks), PCT_ERR_STATE);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "does not match pg_control"));
	/* the wrong KEK */
	kek[5] ^= 1;
	ck_assert_int_eq(pct_keydir_read(dir, geteuid(), kek, 0, &ks), PCT_ERR_KEY);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "wrong cluster key or damaged key file"));
	ck_assert_int_eq(ks.keylen, 0);
}
END_TEST

START_TEST(write_swap_and_extras)
{
	char		live[4096],
				newd[4096],
				p[4096];
	uint8_t		kek[PCT_KEK_LEN],
				kek2[PCT_KEK_LEN],
				buf[256];
	pct_keyset	ks,
				ks2;
	unsigned	st;
	bool		exists;

	unit_copy_vector("c1_aes256", pgdata);
	unit_vector_kek("c1_aes256", kek);
	memset(kek2, 0x77, sizeof(kek2));
	kpath(live, "live", NULL);
	kpath(newd, "new", NULL);
	kpath(p, "live", "README.kms");
	unit_write_file(p, "kept by the key command\n", 24, 0600);
	kpath(p, "live", "wrapped.kek");
	unit_write_file(p, "OLD", 3, 0600);
	ck_assert_int_eq(pct_keydir_read(live, geteuid(), kek, 32, &ks), PCT_OK);
	ck_assert_int_eq(pct_durable_mkdir(newd, 0700), PCT_OK);
	/* the new key command wrote its own wrapped.kek into new/ */
	kpath(p, "new", "wrapped.kek");
	unit_write_file(p, "NEW", 3, 0600);
	ck_assert_int_eq(pct_keydir_write(newd, &ks, kek2, 0600, live), PCT_OK);
	ck_assert_int_eq(pct_keydir_swap(pgdata), PCT_OK);
	ck_assert_int_eq(pct_keydir_state(pgdata, &st, &exists), PCT_OK);
	ck_assert_uint_eq(st, PCT_KD_LIVE);
	/* new KEK unwraps the same plaintext, old one fails */
	ck_assert_int_eq(pct_keydir_read(live, geteuid(), kek2, 32, &ks2), PCT_OK);
	for (int id = 0; id < 2; id++)
	{
		ck_assert_mem_eq(ks2.key[id].plain, ks.key[id].plain, PCT_KEY_PLAIN_LEN);
		ck_assert_uint_eq(ks2.key[id].counter, ks.key[id].counter + 1);
	}
	ck_assert_int_eq(pct_keydir_read(live, geteuid(), kek, 32, &ks2), PCT_ERR_KEY);
	/* extras carried over, the command's own file kept */
	kpath(p, "live", "README.kms");
	ck_assert_uint_eq(unit_read_file(p, buf, sizeof(buf)), 24);
	ck_assert_mem_eq(buf, "kept by the key command\n", 24);
	kpath(p, "live", "wrapped.kek");
	ck_assert_uint_eq(unit_read_file(p, buf, sizeof(buf)), 3);
	ck_assert_mem_eq(buf, "NEW", 3);
	/* a non-regular extra is refused */
	ck_assert_int_eq(pct_durable_mkdir(newd, 0700), PCT_OK);
	kpath(p, "live", "subdir");
	mkdir(p, 0700);
	ck_assert_int_eq(pct_keydir_write(newd, &ks, kek2, 0600, live), PCT_ERR_STATE);
}
END_TEST

/* Make the key directory hold exactly the sub-directories of `state`,
 * live/ from vector A (KEK a), new/ from vector B. */
static void
make_state(unsigned state)
{
	char		p[4096],
				q[4096];

	unit_copy_vector("b_aes256", pgdata);
	if (state & PCT_KD_NEW)
	{
		kpath(p, "live", NULL);
		kpath(q, "new", NULL);
		ck_assert_int_eq(rename(p, q), 0);
		/* a second live/ from another vector */
		kpath(p, "", NULL);
		{
			char		tmp[4096];

			snprintf(tmp, sizeof(tmp), "%s/t", pgdata);
			unit_copy_vector("b_aes256_rewrap1", tmp);
			snprintf(tmp, sizeof(tmp), "%s/t/pg_cryptokeys/live", pgdata);
			kpath(q, "live", NULL);
			ck_assert_int_eq(rename(tmp, q), 0);
			snprintf(tmp, sizeof(tmp), "%s/t", pgdata);
			unit_rmtree(tmp);
		}
	}
	if (state & PCT_KD_OLD)
	{
		kpath(p, "old", NULL);
		mkdir(p, 0700);
		kpath(q, "old", "relation.wkey");
		unit_write_file(q, "old", 3, 0600);
	}
	if (!(state & PCT_KD_LIVE))
	{
		kpath(p, "live", NULL);
		unit_rmtree(p);
	}
}

START_TEST(repair_table)
{
	static const struct
	{
		unsigned	before;
		pct_rc		rc;
		pct_repair	done;
		unsigned	after;
	}			cases[] = {
		{PCT_KD_LIVE, PCT_OK, PCT_REPAIR_NONE, PCT_KD_LIVE},
		{PCT_KD_LIVE | PCT_KD_NEW, PCT_OK, PCT_REPAIR_REMOVED_NEW, PCT_KD_LIVE},
		{PCT_KD_NEW | PCT_KD_OLD, PCT_OK, PCT_REPAIR_INSTALLED_NEW, PCT_KD_LIVE},
		{PCT_KD_LIVE | PCT_KD_OLD, PCT_OK, PCT_REPAIR_REMOVED_OLD, PCT_KD_LIVE},
		{PCT_KD_NEW, PCT_ERR_STATE, PCT_REPAIR_NONE, PCT_KD_NEW},
		{PCT_KD_OLD, PCT_ERR_STATE, PCT_REPAIR_NONE, PCT_KD_OLD},
		{PCT_KD_LIVE | PCT_KD_NEW | PCT_KD_OLD, PCT_ERR_STATE, PCT_REPAIR_NONE,
		PCT_KD_LIVE | PCT_KD_NEW | PCT_KD_OLD},
		{0, PCT_ERR_STATE, PCT_REPAIR_NONE, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		pct_repair	done = PCT_REPAIR_REMOVED_OLD;
		unsigned	st;
		bool		exists;
		char		p[4096];
		uint8_t		kek_b[PCT_KEK_LEN];
		pct_keyset	ks;

		kpath(p, "", NULL);
		unit_rmtree(p);
		make_state(cases[i].before);
		ck_assert_int_eq(pct_keydir_state(pgdata, &st, &exists), PCT_OK);
		ck_assert_uint_eq(st, cases[i].before);
		unit_capture_log();
		ck_assert_int_eq(pct_keydir_repair(pgdata, &done), cases[i].rc);
		if (cases[i].rc == PCT_OK)
			ck_assert_int_eq(done, cases[i].done);
		else
			ck_assert_ptr_nonnull(strstr(unit_last_error(), "cannot repair key directory state"));
		ck_assert_int_eq(pct_keydir_state(pgdata, &st, &exists), PCT_OK);
		ck_assert_uint_eq(st, cases[i].after);
		/* new+old installs new/: live/ now holds what new/ held */
		if (cases[i].before == (PCT_KD_NEW | PCT_KD_OLD))
		{
			unit_vector_kek("b_aes256", kek_b);
			kpath(p, "live", NULL);
			ck_assert_int_eq(pct_keydir_read(p, geteuid(), kek_b, 32, &ks), PCT_OK);
		}
	}
	ck_assert_str_eq(pct_repair_str(PCT_REPAIR_INSTALLED_NEW),
					 "installed new keys from interrupted change");
}
END_TEST

static Suite *
keydir_suite(void)
{
	Suite	   *s = suite_create("keydir");
	TCase	   *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, states);
	tcase_add_test(tc, checks_of_format_1_4);
	tcase_add_test(tc, read_and_lengths);
	tcase_add_test(tc, write_swap_and_extras);
	tcase_add_test(tc, repair_table);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(keydir_suite)
