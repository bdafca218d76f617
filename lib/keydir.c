/*
 * keydir.c
 *	  The key directory $PGDATA/pg_cryptokeys (FORMAT section 1).
 *
 * Owns: the states of live/, new/ and old/; the checks every reader makes
 * (FORMAT 1.4); reading both keys of a directory; staging a new directory;
 * the durable swap that installs it; and the repair table that finishes or
 * undoes an interrupted swap.
 *
 * Theory of operation of a key change (the caller holds the lock):
 *	1. new/ is created and filled: key files wrapped with the new KEK and the
 *	   non-key files of live/; each file and the directory are fsynced.
 *	2. live/ is renamed to old/ (durable).
 *	3. new/ is renamed to live/ (durable).
 *	4. old/ is removed (durable).
 * A crash leaves one of: live+new (before 2: the old KEK still rules, new/
 * is removed), new+old (between 2 and 3: new/ is complete, it becomes
 * live/), live+old (between 3 and 4: old/ is removed).  So after a repair
 * the keys always unwrap with exactly one of the two KEKs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pct_internal.h"

/* The largest key file read; gen 1 readers ignore bytes past 72. */
#define KEYFILE_READ_MAX 4096

pct_rc
pct_keydir_state(const char *pgdata, unsigned *state, bool *exists)
{
	static const struct
	{
		const char *name;
		unsigned	bit;
	}			subdirs[] = {
		{PCT_KEYDIR_LIVE, PCT_KD_LIVE},
		{PCT_KEYDIR_NEW, PCT_KD_NEW},
		{PCT_KEYDIR_OLD, PCT_KD_OLD},
	};
	char		path[PCT_MAXPATH];
	struct stat st;
	pct_rc		rc;

	*state = 0;
	*exists = false;
	if ((rc = pct_path(path, "%s/%s", pgdata, PCT_KEYDIR)) != PCT_OK)
		return rc;
	if (lstat(path, &st) != 0)
	{
		if (errno == ENOENT)
			return PCT_OK;
		return pct_syserr("could not stat \"%s\"", path);
	}
	if (!S_ISDIR(st.st_mode))
		return pct_fail(PCT_ERR_STATE, NULL, NULL,
						"\"%s\" is not a directory", path);
	*exists = true;
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++)
	{
		if ((rc = pct_path(path, "%s/%s/%s", pgdata, PCT_KEYDIR,
						   subdirs[i].name)) != PCT_OK)
			return rc;
		if (lstat(path, &st) == 0)
			*state |= subdirs[i].bit;
		else if (errno != ENOENT)
			return pct_syserr("could not stat \"%s\"", path);
	}
	return PCT_OK;
}

const char *
pct_keydir_state_str(unsigned state)
{
	static const char *const names[8] = {
		"no key directories",
		"live",
		"new",
		"live and new",
		"old",
		"live and old",
		"new and old",
		"live, new and old",
	};

	return names[state & 7];
}

/* Key id of a generation-1 file name (all digits), or -1; *gen1 tells
 * whether the name is all digits at all. */
static int
gen1_id(const char *name, bool *gen1)
{
	const char *p;

	*gen1 = false;
	if (*name == '\0')
		return -1;
	for (p = name; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	*gen1 = true;
	/* "0", "00", "1", "01" name keys 0 and 1; larger numbers none. */
	for (p = name; *p == '0' && p[1] != '\0'; p++)
		;
	if (strcmp(p, "0") == 0)
		return PCT_KEY_RELATION;
	if (strcmp(p, "1") == 0)
		return PCT_KEY_WAL;
	return -1;
}

/* Classify a name: key id and generation, or -1 for a non-key file.  An
 * all-digit name other than a key id is reported as *bad_digit. */
static int
classify(const char *name, int *generation, bool *bad_digit)
{
	bool		digits;
	int			id;

	*bad_digit = false;
	if (strcmp(name, PCT_GEN2_FILE_RELATION) == 0)
	{
		*generation = PCT_GEN2;
		return PCT_KEY_RELATION;
	}
	if (strcmp(name, PCT_GEN2_FILE_WAL) == 0)
	{
		*generation = PCT_GEN2;
		return PCT_KEY_WAL;
	}
	id = gen1_id(name, &digits);
	if (digits)
	{
		*generation = PCT_GEN1;
		*bad_digit = id < 0;
		return id;
	}
	return -1;
}

typedef struct check_state
{
	pct_finding_fn finding;
	void	   *arg;
	int			problems;
} check_state;

static void
finding(check_state *cs, const char *path, const char *fmt,...)
PCT_PRINTF(3, 4);

static void
finding(check_state *cs, const char *path, const char *fmt,...)
{
	char		what[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	cs->problems++;
	if (cs->finding)
		cs->finding(cs->arg, path, what);
}

/* The checks of FORMAT 1.4 on one key file. */
static pct_rc
check_keyfile(check_state *cs, const char *path, uid_t owner_uid)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return pct_syserr("could not stat \"%s\"", path);
	if (S_ISLNK(st.st_mode))
		finding(cs, path, "key file is a symbolic link");
	else if (!S_ISREG(st.st_mode))
		finding(cs, path, "key file is not a regular file");
	else
	{
		if (st.st_uid != owner_uid)
			finding(cs, path, "key file owner is uid %u, not the cluster owner (uid %u)",
					(unsigned) st.st_uid, (unsigned) owner_uid);
		if (st.st_mode & (S_IWGRP | S_IWOTH))
			finding(cs, path, "key file mode %04o lets group or others write it",
					(unsigned) (st.st_mode & 07777));
	}
	return PCT_OK;
}

pct_rc
pct_keydir_check(const char *dir, uid_t owner_uid, int *generation,
				 pct_finding_fn finding_fn, void *arg, int *problems)
{
	check_state cs = {finding_fn, arg, 0};
	char		seen[3][PCT_NUM_KEYS][256];	/* [generation][id] name */
	struct stat st;
	DIR		   *d;
	struct dirent *de;
	int			gen = 0;
	pct_rc		rc = PCT_OK;

	memset(seen, 0, sizeof(seen));
	*generation = 0;
	*problems = 0;
	if (lstat(dir, &st) != 0)
	{
		if (errno != ENOENT)
			return pct_syserr("could not stat \"%s\"", dir);
		finding(&cs, dir, "key directory is missing");
		*problems = cs.problems;
		return PCT_OK;
	}
	if (!S_ISDIR(st.st_mode))
	{
		finding(&cs, dir, S_ISLNK(st.st_mode) ?
				"key directory is a symbolic link" :
				"key directory is not a directory");
		*problems = cs.problems;
		return PCT_OK;
	}
	if (st.st_uid != owner_uid)
		finding(&cs, dir, "key directory owner is uid %u, not the cluster owner (uid %u)",
				(unsigned) st.st_uid, (unsigned) owner_uid);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		finding(&cs, dir, "key directory mode %04o lets group or others write it",
				(unsigned) (st.st_mode & 07777));

	d = opendir(dir);
	if (d == NULL)
		return pct_syserr("could not open directory \"%s\"", dir);
	while (rc == PCT_OK && (errno = 0, de = readdir(d)) != NULL)
	{
		char		path[PCT_MAXPATH];
		int			g = 0,
					id;
		bool		bad_digit;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		id = classify(de->d_name, &g, &bad_digit);
		if ((rc = pct_path(path, "%s/%s", dir, de->d_name)) != PCT_OK)
			break;
		if (bad_digit)
		{
			finding(&cs, path, "unexpected key file name (only 0 and 1 are keys)");
			continue;
		}
		if (id < 0)
			continue;			/* not a key file: servers ignore it */
		if (seen[g][id][0] != '\0')
		{
			finding(&cs, path, "duplicate key file: \"%s\" names key %d too",
					seen[g][id], id);
			continue;
		}
		snprintf(seen[g][id], sizeof(seen[g][id]), "%s", de->d_name);
		rc = check_keyfile(&cs, path, owner_uid);
	}
	if (rc == PCT_OK && errno != 0)
		rc = pct_syserr("could not read directory \"%s\"", dir);
	closedir(d);
	if (rc != PCT_OK)
		return rc;

	/* Exactly one generation, with both keys. */
	for (int g = PCT_GEN1; g <= PCT_GEN2; g++)
		if (seen[g][0][0] || seen[g][1][0])
		{
			if (gen != 0)
				finding(&cs, dir, "key files of both generations are present");
			gen = g;
		}
	if (gen == 0)
		finding(&cs, dir, "no key files: relation and WAL keys are missing");
	else
		for (int id = 0; id < PCT_NUM_KEYS; id++)
			if (!seen[gen][id][0])
				finding(&cs, dir, "%s key file \"%s\" is missing",
						id == PCT_KEY_RELATION ? "relation" : "WAL",
						pct_keyfile_name(gen, id));
	*generation = gen;
	*problems = cs.problems;
	return PCT_OK;
}

/* Report a finding as an error message (used by pct_keydir_read). */
static void
report_finding(void *arg, const char *path, const char *what)
{
	(void) arg;
	pct_report(PCT_LOG_ERROR, NULL, NULL, "%s: \"%s\"", what, path);
}

/* Read a key file, refusing symlinks and non-regular files. */
static pct_rc
read_keyfile(const char *path, uint8_t *buf, size_t *len)
{
	int			fd;
	struct stat st;
	ssize_t		n;
	size_t		got = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pct_syserr("could not open key file \"%s\"", path);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"key file \"%s\" is not a regular file", path);
	}
	while (got < KEYFILE_READ_MAX &&
		   (n = read(fd, buf + got, KEYFILE_READ_MAX - got)) != 0)
	{
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			pct_rc		rc = pct_syserr("could not read key file \"%s\"", path);

			close(fd);
			return rc;
		}
		got += (size_t) n;
	}
	close(fd);
	*len = got;
	return PCT_OK;
}

pct_rc
pct_keydir_read(const char *dir, uid_t owner_uid,
				const uint8_t kek[PCT_KEK_LEN], int expect_keylen,
				pct_keyset *ks)
{
	uint8_t		buf[KEYFILE_READ_MAX];
	int			gen,
				problems;
	pct_rc		rc;

	memset(ks, 0, sizeof(*ks));
	rc = pct_keydir_check(dir, owner_uid, &gen, report_finding, NULL,
						  &problems);
	if (rc != PCT_OK)
		return rc;
	if (problems > 0)
		return pct_fail(PCT_ERR_STATE, NULL, NULL,
						"key directory \"%s\" failed its checks", dir);
	ks->generation = gen;
	for (int id = 0; id < PCT_NUM_KEYS && rc == PCT_OK; id++)
	{
		char		path[PCT_MAXPATH];
		size_t		len = 0;

		if ((rc = pct_path(path, "%s/%s", dir, pct_keyfile_name(gen, id))) != PCT_OK ||
			(rc = read_keyfile(path, buf, &len)) != PCT_OK)
			break;
		rc = pct_keyfile_unwrap(path, gen, id, buf, len, kek, &ks->key[id]);
	}
	pct_wipe(buf, sizeof(buf));
	if (rc == PCT_OK && ks->key[0].keylen != ks->key[1].keylen)
		rc = pct_fail(PCT_ERR_FORMAT, NULL, NULL,
					  "relation key (%d bits) and WAL key (%d bits) in \"%s\" differ in length",
					  ks->key[0].keylen * 8, ks->key[1].keylen * 8, dir);
	if (rc == PCT_OK && expect_keylen != 0 && ks->key[0].keylen != expect_keylen)
		rc = pct_fail(PCT_ERR_STATE, NULL, NULL,
					  "key length of %d bits in \"%s\" does not match pg_control (%d bits)",
					  ks->key[0].keylen * 8, dir, expect_keylen * 8);
	if (rc != PCT_OK)
	{
		pct_wipe(ks, sizeof(*ks));
		return rc;
	}
	ks->keylen = ks->key[0].keylen;
	return PCT_OK;
}

/* Copy one regular file durably unless dst exists already. */
static pct_rc
copy_extra(const char *src, const char *dst)
{
	struct stat st;
	uint8_t    *buf;
	size_t		len = 0;
	pct_rc		rc;

	if (lstat(dst, &st) == 0)
		return PCT_OK;			/* the key command wrote its own */
	if (lstat(src, &st) != 0)
		return pct_syserr("could not stat \"%s\"", src);
	if (!S_ISREG(st.st_mode))
		return pct_fail(PCT_ERR_STATE, NULL,
						"Only regular files can be kept beside key files.",
						"\"%s\" is not a regular file", src);
	buf = malloc((size_t) st.st_size + 1);
	if (buf == NULL)
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	rc = pct_read_file(src, buf, (size_t) st.st_size, &len);
	if (rc == PCT_OK)
		rc = pct_durable_write(dst, buf, len, st.st_mode & 07777);
	pct_wipe(buf, (size_t) st.st_size + 1);
	free(buf);
	return rc;
}

static pct_rc
copy_extras(const char *from, const char *to)
{
	DIR		   *d;
	struct dirent *de;
	pct_rc		rc = PCT_OK;

	d = opendir(from);
	if (d == NULL)
		return pct_syserr("could not open directory \"%s\"", from);
	while (rc == PCT_OK && (errno = 0, de = readdir(d)) != NULL)
	{
		char		src[PCT_MAXPATH],
					dst[PCT_MAXPATH];
		int			g;
		bool		bad;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (classify(de->d_name, &g, &bad) >= 0 || bad)
			continue;
		/* leftovers of our own interrupted temp-file writes */
		if (strstr(de->d_name, ".tmp.") != NULL)
			continue;
		if ((rc = pct_path(src, "%s/%s", from, de->d_name)) == PCT_OK &&
			(rc = pct_path(dst, "%s/%s", to, de->d_name)) == PCT_OK)
			rc = copy_extra(src, dst);
	}
	if (rc == PCT_OK && errno != 0)
		rc = pct_syserr("could not read directory \"%s\"", from);
	closedir(d);
	return rc;
}

pct_rc
pct_keydir_write(const char *dir, const pct_keyset *ks,
				 const uint8_t kek[PCT_KEK_LEN], mode_t filemode,
				 const char *copy_extras_from)
{
	pct_rc		rc = PCT_OK;

	for (int id = 0; id < PCT_NUM_KEYS && rc == PCT_OK; id++)
	{
		pct_datakey dk = ks->key[id];
		uint8_t		out[PCT_GEN1_FILE_LEN];
		size_t		outlen = 0;
		char		path[PCT_MAXPATH];

		if (dk.generation == PCT_GEN1)
			dk.counter++;		/* every wrap increments the counter */
		rc = pct_keyfile_wrap(&dk, kek, out, &outlen);
		pct_wipe(&dk, sizeof(dk));
		if (rc == PCT_OK &&
			(rc = pct_path(path, "%s/%s", dir,
						   pct_keyfile_name(ks->generation, id))) == PCT_OK)
			rc = pct_durable_write(path, out, outlen, filemode);
	}
	if (rc == PCT_OK && copy_extras_from != NULL)
		rc = copy_extras(copy_extras_from, dir);
	if (rc == PCT_OK)
		rc = pct_fsync_path(dir, true);
	if (rc == PCT_OK)
		pct_durable_step("key files written");
	return rc;
}

static pct_rc
keydir_paths(const char *pgdata, char *live, char *newd, char *old)
{
	pct_rc		rc;

	if ((rc = pct_path(live, "%s/%s/%s", pgdata, PCT_KEYDIR, PCT_KEYDIR_LIVE)) != PCT_OK ||
		(rc = pct_path(newd, "%s/%s/%s", pgdata, PCT_KEYDIR, PCT_KEYDIR_NEW)) != PCT_OK)
		return rc;
	return pct_path(old, "%s/%s/%s", pgdata, PCT_KEYDIR, PCT_KEYDIR_OLD);
}

pct_rc
pct_keydir_repair(const char *pgdata, pct_repair *done)
{
	char		live[PCT_MAXPATH],
				newd[PCT_MAXPATH],
				old[PCT_MAXPATH];
	unsigned	state;
	bool		exists;
	pct_rc		rc;

	*done = PCT_REPAIR_NONE;
	if ((rc = keydir_paths(pgdata, live, newd, old)) != PCT_OK ||
		(rc = pct_keydir_state(pgdata, &state, &exists)) != PCT_OK)
		return rc;
	switch (state)
	{
		case PCT_KD_LIVE:
			return PCT_OK;
		case PCT_KD_LIVE | PCT_KD_NEW:
			/* interrupted before the swap: the old KEK still rules */
			if ((rc = pct_durable_rmtree(newd)) != PCT_OK)
				return rc;
			pct_durable_step("new key directory removed");
			*done = PCT_REPAIR_REMOVED_NEW;
			return PCT_OK;
		case PCT_KD_NEW | PCT_KD_OLD:
			/* interrupted in the swap: new/ was complete before it began */
			if ((rc = pct_durable_rename(newd, live)) != PCT_OK)
				return rc;
			pct_durable_step("new key directory installed");
			if ((rc = pct_durable_rmtree(old)) != PCT_OK)
				return rc;
			pct_durable_step("old key directory removed");
			*done = PCT_REPAIR_INSTALLED_NEW;
			return PCT_OK;
		case PCT_KD_LIVE | PCT_KD_OLD:
			/* interrupted after the swap */
			if ((rc = pct_durable_rmtree(old)) != PCT_OK)
				return rc;
			pct_durable_step("old key directory removed");
			*done = PCT_REPAIR_REMOVED_OLD;
			return PCT_OK;
		default:
			return pct_fail(PCT_ERR_STATE,
							exists ? NULL : "The cluster has no pg_cryptokeys directory.",
							"Restore pg_cryptokeys from a backup, or inspect it by hand.",
							"cannot repair key directory state \"%s\" in \"%s/%s\"",
							pct_keydir_state_str(state), pgdata, PCT_KEYDIR);
	}
}

const char *
pct_repair_str(pct_repair r)
{
	switch (r)
	{
		case PCT_REPAIR_NONE:
			return "nothing to repair";
		case PCT_REPAIR_REMOVED_NEW:
			return "removed interrupted new key directory";
		case PCT_REPAIR_INSTALLED_NEW:
			return "installed new keys from interrupted change";
		case PCT_REPAIR_REMOVED_OLD:
			return "removed old key directory";
	}
	return "unknown repair";
}

pct_rc
pct_keydir_swap(const char *pgdata)
{
	char		live[PCT_MAXPATH],
				newd[PCT_MAXPATH],
				old[PCT_MAXPATH];
	pct_rc		rc;

	if ((rc = keydir_paths(pgdata, live, newd, old)) != PCT_OK)
		return rc;
	if ((rc = pct_durable_rename(live, old)) != PCT_OK)
		return rc;
	pct_durable_step("live key directory renamed to old");
	if ((rc = pct_durable_rename(newd, live)) != PCT_OK)
		return rc;
	pct_durable_step("new key directory renamed to live");
	if ((rc = pct_durable_rmtree(old)) != PCT_OK)
		return rc;
	pct_durable_step("old key directory removed");
	return PCT_OK;
}
