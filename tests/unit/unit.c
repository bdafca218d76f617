/*
 * unit.c
 *	  Helpers shared by the Check unit suites; see unit.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

static char last_error[4096];
static char all_log[65536];

const char *
unit_vectors(void)
{
	const char *v = getenv("VECTORS");

	return v ? v : "tests/vectors";
}

const char *
unit_top(void)
{
	const char *v = getenv("TOP");

	return v ? v : ".";
}

char *
unit_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char	   *p;

	if (asprintf(&p, "%s/pct-unit-XXXXXX", base ? base : "/tmp") < 0)
		ck_abort_msg("asprintf");
	ck_assert_msg(mkdtemp(p) != NULL, "mkdtemp: %s", strerror(errno));
	return p;
}

void
unit_rmtree(const char *path)
{
	DIR		   *d;
	struct dirent *de;
	struct stat st;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode))
	{
		unlink(path);
		return;
	}
	chmod(path, 0700);
	d = opendir(path);
	if (d != NULL)
	{
		while ((de = readdir(d)) != NULL)
		{
			char		p[4096];

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
			unit_rmtree(p);
		}
		closedir(d);
	}
	rmdir(path);
}

void
unit_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_msg(write(fd, data, len) == (ssize_t) len, "write %s", path);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

size_t
unit_read_file(const char *path, void *buf, size_t max)
{
	int			fd = open(path, O_RDONLY);
	ssize_t		n;

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, max);
	ck_assert_msg(n >= 0, "read %s", path);
	close(fd);
	return (size_t) n;
}

void
unit_copy_vector(const char *name, const char *pgdata)
{
	char		src[4096],
				dst[4096];
	DIR		   *d;
	struct dirent *de;

	mkdir(pgdata, 0700);
	snprintf(dst, sizeof(dst), "%s/pg_cryptokeys", pgdata);
	ck_assert_msg(mkdir(dst, 0700) == 0, "mkdir %s: %s", dst, strerror(errno));
	snprintf(dst, sizeof(dst), "%s/pg_cryptokeys/live", pgdata);
	ck_assert_msg(mkdir(dst, 0700) == 0, "mkdir %s: %s", dst, strerror(errno));
	snprintf(src, sizeof(src), "%s/%s/pg_cryptokeys/live", unit_vectors(), name);
	d = opendir(src);
	ck_assert_msg(d != NULL, "opendir %s: %s", src, strerror(errno));
	while ((de = readdir(d)) != NULL)
	{
		char		sp[4096],
					dp[4096];
		uint8_t		buf[4096];
		size_t		n;

		if (de->d_name[0] == '.')
			continue;
		ck_assert((size_t) snprintf(sp, sizeof(sp), "%s/%s", src, de->d_name) < sizeof(sp));
		ck_assert((size_t) snprintf(dp, sizeof(dp), "%s/%s", dst, de->d_name) < sizeof(dp));
		n = unit_read_file(sp, buf, sizeof(buf));
		unit_write_file(dp, buf, n, 0600);
	}
	closedir(d);
}

/* Find "key": "value" after position `from` in a JSON text. */
static const char *
json_string(const char *text, const char *key, char *out, size_t max)
{
	char		pat[128];
	const char *p,
			   *q;

	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	p = strstr(text, pat);
	if (p == NULL)
		return NULL;
	p += strlen(pat);
	q = strchr(p, '"');
	if (q == NULL || (size_t) (q - p) >= max)
		return NULL;
	memcpy(out, p, (size_t) (q - p));
	out[q - p] = '\0';
	return q;
}

static char *
vector_json(const char *name)
{
	char		path[4096];
	char	   *buf = malloc(65536);
	size_t		n;

	ck_assert_ptr_nonnull(buf);
	snprintf(path, sizeof(path), "%s/%s/vector.json", unit_vectors(), name);
	n = unit_read_file(path, buf, 65535);
	buf[n] = '\0';
	return buf;
}

int
unit_unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t		n = strlen(hex),
				i;

	if (n % 2 != 0 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++)
	{
		unsigned int v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t) v;
	}
	return (int) (n / 2);
}

void
unit_vector_kek(const char *name, uint8_t kek[PCT_KEK_LEN])
{
	char	   *j = vector_json(name);
	char		hex[256];

	ck_assert_ptr_nonnull(json_string(j, "kek_hex", hex, sizeof(hex)));
	ck_assert_int_eq(unit_unhex(hex, kek, PCT_KEK_LEN), PCT_KEK_LEN);
	free(j);
}

int
unit_vector_dek(const char *name, int id, uint8_t *dek)
{
	char	   *j = vector_json(name);
	char		hex[256];
	char		pat[32];
	const char *p;
	int			n;

	/* keys appear in id order, each with "id": N */
	snprintf(pat, sizeof(pat), "\"id\": %d", id);
	p = strstr(j, pat);
	ck_assert_msg(p != NULL, "vector %s has no key %d", name, id);
	ck_assert_ptr_nonnull(json_string(p, "dek_hex", hex, sizeof(hex)));
	n = unit_unhex(hex, dek, PCT_MAX_KEY_LEN);
	ck_assert_int_gt(n, 0);
	free(j);
	return n;
}

static void
capture(void *arg, pct_level level, const char *msg, const char *detail,
		const char *hint)
{
	size_t		used = strlen(all_log);

	(void) arg;
	if (level == PCT_LOG_ERROR)
		snprintf(last_error, sizeof(last_error), "%s", msg);
	snprintf(all_log + used, sizeof(all_log) - used, "%s\n%s%s%s%s",
			 msg, detail ? detail : "", detail ? "\n" : "",
			 hint ? hint : "", hint ? "\n" : "");
}

void
unit_capture_log(void)
{
	last_error[0] = '\0';
	all_log[0] = '\0';
	pct_set_log(capture, NULL);
}

const char *
unit_last_error(void)
{
	return last_error;
}

const char *
unit_all_log(void)
{
	return all_log;
}

int
unit_run(Suite *s)
{
	SRunner    *sr = srunner_create(s);
	int			failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
