/*
 * check_control.c
 *	  Unit tests of lib/control.c: CRC-32C, pg_control layout, reading and
 *	  checking, 1300 <-> 1400 conversion, unloggedLSN, durable writing.
 *
 * Owns: the pg_control suite.  The layout constants of pg_cryptokeys.h are
 * checked with offsetof() against the PostgreSQL 15 server headers, and the
 * library is run on real pg_control files made by initdb and cross-checked
 * with pg_controldata.  initdb refuses root, so those tests fail (loudly)
 * when the suite runs as root; `make check` runs it as an unprivileged user.
 *
 * The CRC-32C reference used here is a separate bit-at-a-time
 * implementation, so the tests do not trust the code they test.
 */

/*
 * Part 1: server headers.  They must come first, and their port.h replaces
 * the printf family and strerror with libpgport functions that are not
 * linked here; so this part only takes facts (offsets, sizes, constants)
 * and the replacements are undone before anything else is included.
 */
#include "postgres_fe.h"
#include "catalog/pg_control.h"

#include "pg_cryptokeys.h"

/* One layout fact: our constant, the server's offset and field size. */
typedef struct layout_fact
{
	const char *name;			/* name of our constant */
	size_t		ours;
	size_t		server;
	size_t		size;			/* size of the server's field */
	size_t		want_size;		/* size our comment documents */
} layout_fact;

#define FIELD_SIZE(f) sizeof(((ControlFileData *) 0)->f)
#define FACT(c, f, sz) {#c, c, offsetof(ControlFileData, f), FIELD_SIZE(f), sz}

static const layout_fact layout_facts[] = {
	FACT(PCT_CTL_OFF_SYSID, system_identifier, 8),
	FACT(PCT_CTL_OFF_VERSION, pg_control_version, 4),
	FACT(PCT_CTL_OFF_CATVERSION, catalog_version_no, 4),
	FACT(PCT_CTL_OFF_STATE, state, 4),
	FACT(PCT_CTL_OFF_TIME, time, 8),
	FACT(PCT_CTL_OFF_CHECKPOINT, checkPoint, 8),
	FACT(PCT_CTL_OFF_CKPT_REDO, checkPointCopy.redo, 8),
	FACT(PCT_CTL_OFF_CKPT_TLI, checkPointCopy.ThisTimeLineID, 4),
	FACT(PCT_CTL_OFF_UNLOGGED_LSN, unloggedLSN, 8),
	FACT(PCT_CTL_OFF_MIN_RECOVERY, minRecoveryPoint, 8),
	FACT(PCT_CTL_OFF_WAL_LEVEL, wal_level, 4),
	FACT(PCT_CTL_OFF_WAL_LOG_HINTS, wal_log_hints, 1),
	FACT(PCT_CTL_OFF_BLCKSZ, blcksz, 4),
	FACT(PCT_CTL_OFF_RELSEG_SIZE, relseg_size, 4),
	FACT(PCT_CTL_OFF_XLOG_BLCKSZ, xlog_blcksz, 4),
	FACT(PCT_CTL_OFF_XLOG_SEG_SIZE, xlog_seg_size, 4),
	FACT(PCT_CTL_OFF_CHECKSUM_VERSION, data_checksum_version, 4),
	FACT(PCT_CTL_OFF_NONCE, mock_authentication_nonce, PCT_CTL_NONCE_LEN),
	/* 1300: the CRC follows the nonce. */
	FACT(PCT_CTL_OFF_CRC_1300, crc, 4),
	/* 1400: the inserted field takes the CRC's place... */
	FACT(PCT_CTL_OFF_ENCRYPTION, crc, 4),
	/* ... and the CRC moves one u32 further. */
	{"PCT_CTL_OFF_CRC_1400", PCT_CTL_OFF_CRC_1400,
	 offsetof(ControlFileData, crc) + sizeof(pg_crc32c), 4, 4},
};

/* Other server facts the format relies on. */
static const size_t server_control_size = sizeof(ControlFileData);
static const size_t server_crc_end =
	offsetof(ControlFileData, crc) + sizeof(pg_crc32c);
static const long server_control_file_size = PG_CONTROL_FILE_SIZE;
static const long server_control_version = PG_CONTROL_VERSION;
static const long server_nonce_len = MOCK_AUTH_NONCE_LEN;
static const long server_dbstates[] = {
	DB_STARTUP, DB_SHUTDOWNED, DB_SHUTDOWNED_IN_RECOVERY, DB_SHUTDOWNING,
	DB_IN_CRASH_RECOVERY, DB_IN_ARCHIVE_RECOVERY, DB_IN_PRODUCTION
};

#undef vsnprintf
#undef snprintf
#undef vsprintf
#undef sprintf
#undef vfprintf
#undef fprintf
#undef vprintf
#undef printf
#undef strerror
#undef strerror_r

/* ---- Part 2: the tests ---- */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#define CTL_SIZE PCT_CONTROL_FILE_SIZE

/* ---- helpers independent of the library ---- */

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
		(uint32_t) p[3] << 24;
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t) get32(p) | (uint64_t) get32(p + 4) << 32;
}

/* Bit-at-a-time CRC-32C (reflected 0x82F63B78), finalised. */
static uint32_t
ref_crc32c(const uint8_t *p, size_t len)
{
	uint32_t	crc = 0xFFFFFFFFu;

	while (len-- > 0)
	{
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return crc ^ 0xFFFFFFFFu;
}

/* Recompute the CRC of a buffer as the given version places it. */
static void
fix_crc(uint8_t *buf, uint32_t version)
{
	size_t		off = version == 1400 ? 292 : 288;

	put32(buf + off, ref_crc32c(buf, off));
}

/* ---- external programs ---- */

static const char *
pg_bindir(void)
{
	const char *v = getenv("PG_BINDIR");

	return v ? v : "/usr/lib/postgresql/15/bin";
}

/*
 * Run a program of the PostgreSQL bin directory with LC_ALL=C; stdout goes
 * to out (or /dev/null), stderr to errlog (or /dev/null).  Returns the exit
 * status, or -1 when it did not exit normally.
 */
static int
run_pg(char *const argv[], const char *out, const char *errlog)
{
	char		prog[4096];
	char	   *av[32];
	pid_t		pid;
	int			status;
	int			n;

	snprintf(prog, sizeof(prog), "%s/%s", pg_bindir(), argv[0]);
	/* The full path as argv[0]: the programs locate themselves by it. */
	av[0] = prog;
	for (n = 1; argv[n] != NULL && n < 31; n++)
		av[n] = argv[n];
	av[n] = NULL;
	fflush(NULL);
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
	{
		int			o = open(out ? out : "/dev/null",
							 O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int			e = open(errlog ? errlog : "/dev/null",
							 O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		setenv("LC_ALL", "C", 1);
		unsetenv("PGDATA");
		execv(prog, av);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Read a small text file into a malloc'd string. */
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

/* ---- the template cluster made by initdb (suite fixture) ---- */

static char *tmpl_dir;			/* holds the cluster, NULL when not made */
static char tmpl_error[1024];	/* why it could not be made */
static uint8_t tmpl_control[CTL_SIZE];

static void
template_setup(void)
{
	char		pgdata[4096],
				errlog[4096],
				path[4096 + 32];
	int			rc;

	tmpl_error[0] = '\0';
	if (geteuid() == 0)
	{
		snprintf(tmpl_error, sizeof(tmpl_error),
				 "these tests run initdb, which refuses to run as root: run "
				 "the unit tests as an unprivileged user (make check does "
				 "this)");
		return;
	}
	tmpl_dir = unit_mkdtemp();
	snprintf(pgdata, sizeof(pgdata), "%s/pgdata", tmpl_dir);
	snprintf(errlog, sizeof(errlog), "%s/initdb.log", tmpl_dir);
	{
		char	   *argv[] = {"initdb", "-D", pgdata, "-N", "-A", "trust",
			"-U", "postgres", "-k", "--no-instructions", NULL};

		rc = run_pg(argv, errlog, errlog);
	}
	if (rc != 0)
	{
		char	   *log = slurp(errlog);

		snprintf(tmpl_error, sizeof(tmpl_error),
				 "initdb failed with status %d: %.800s", rc, log);
		free(log);
		return;
	}
	snprintf(path, sizeof(path), "%s/global/pg_control", pgdata);
	if (unit_read_file(path, tmpl_control, sizeof(tmpl_control)) != CTL_SIZE)
		snprintf(tmpl_error, sizeof(tmpl_error), "short pg_control");
}

static void
template_teardown(void)
{
	if (tmpl_dir != NULL)
	{
		unit_rmtree(tmpl_dir);
		free(tmpl_dir);
		tmpl_dir = NULL;
	}
}

/* Fail loudly unless the template cluster exists. */
static void
need_template(void)
{
	ck_assert_msg(tmpl_error[0] == '\0', "%s", tmpl_error);
	ck_assert_ptr_nonnull(tmpl_dir);
}

/* A new data directory holding only global/pg_control (the template's, or
 * data when not NULL) with the given file mode.  Caller frees. */
static char *
make_pgdata(const uint8_t *data, size_t len, mode_t mode)
{
	char	   *dir = unit_mkdtemp();
	char		path[4096];

	snprintf(path, sizeof(path), "%s/global", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/global/pg_control", dir);
	unit_write_file(path, data, len, mode);
	return dir;
}

static void
read_control_file(const char *pgdata, uint8_t *buf)
{
	char		path[4096];

	snprintf(path, sizeof(path), "%s/global/pg_control", pgdata);
	ck_assert_uint_eq(unit_read_file(path, buf, CTL_SIZE + 1), CTL_SIZE);
}

/* Run pg_controldata on pgdata; returns its output (malloc'd) and sets
 * *status. */
static char *
controldata(const char *pgdata, int *status)
{
	char		out[4096],
				errlog[4096];
	char		dir[4096];
	char	   *text,
			   *out_text,
			   *err;
	char	   *argv[] = {"pg_controldata", "-D", dir, NULL};

	snprintf(dir, sizeof(dir), "%s", pgdata);
	snprintf(out, sizeof(out), "%s/controldata.out", pgdata);
	snprintf(errlog, sizeof(errlog), "%s/controldata.err", pgdata);
	*status = run_pg(argv, out, errlog);
	out_text = slurp(out);
	err = slurp(errlog);
	/* A newline first, so that every label follows one; warnings (stderr)
	 * are kept with the output. */
	text = malloc(strlen(out_text) + strlen(err) + 2);
	ck_assert_ptr_nonnull(text);
	sprintf(text, "\n%s%s", out_text, err);
	free(out_text);
	free(err);
	unlink(out);
	unlink(errlog);
	return text;
}

/* The value pg_controldata prints for a label, e.g. "Database block size". */
static const char *
cd_value(const char *text, const char *label, char *out, size_t outsize)
{
	char		pat[256];
	const char *p;
	size_t		n;

	snprintf(pat, sizeof(pat), "\n%s:", label);
	p = strstr(text, pat);
	ck_assert_msg(p != NULL, "pg_controldata did not print \"%s\"", label);
	p += strlen(pat);
	while (*p == ' ')
		p++;
	n = strcspn(p, "\n");
	ck_assert_uint_lt(n, outsize);
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

/* ---- layout ---- */

START_TEST(test_layout_offsets)
{
	for (size_t i = 0; i < sizeof(layout_facts) / sizeof(layout_facts[0]); i++)
	{
		const layout_fact *f = &layout_facts[i];

		ck_assert_msg(f->ours == f->server,
					  "%s is %zu, the server header says %zu",
					  f->name, f->ours, f->server);
		ck_assert_msg(f->size == f->want_size,
					  "field at %s has %zu bytes, expected %zu",
					  f->name, f->size, f->want_size);
	}
	/* Bytes 292..295 are padding in 1300 and the file is 8192 bytes. */
	ck_assert_uint_eq(server_crc_end, PCT_CTL_OFF_CRC_1400);
	ck_assert_uint_eq(server_control_size, PCT_CTL_OFF_CRC_1400 + 4);
	ck_assert_int_eq(server_control_file_size, PCT_CONTROL_FILE_SIZE);
	ck_assert_int_eq(server_control_version, PCT_CONTROL_VERSION_STOCK);
	ck_assert_int_eq(server_nonce_len, PCT_CTL_NONCE_LEN);
	ck_assert_int_eq(PCT_CTL_OFF_NONCE + PCT_CTL_NONCE_LEN,
					 PCT_CTL_OFF_CRC_1300);
}
END_TEST

/* Every PCT_CTL_OFF_* of the header is in the table above. */
START_TEST(test_layout_complete)
{
	char		path[4096];
	char	   *hdr;
	const char *p;
	int			found = 0;

	snprintf(path, sizeof(path), "%s/pg_cryptokeys.h", unit_top());
	hdr = malloc(1 << 20);
	ck_assert_ptr_nonnull(hdr);
	hdr[unit_read_file(path, hdr, (1 << 20) - 1)] = '\0';
	for (p = strstr(hdr, "#define PCT_CTL_OFF_"); p != NULL;
		 p = strstr(p + 1, "#define PCT_CTL_OFF_"))
	{
		char		name[64];
		size_t		n = strcspn(p + 8, " \t\n");
		bool		known = false;

		ck_assert_uint_lt(n, sizeof(name));
		memcpy(name, p + 8, n);
		name[n] = '\0';
		for (size_t i = 0; i < sizeof(layout_facts) / sizeof(layout_facts[0]); i++)
			known |= strcmp(layout_facts[i].name, name) == 0;
		ck_assert_msg(known, "%s is not checked against the server headers",
					  name);
		found++;
	}
	free(hdr);
	ck_assert_int_eq(found, (int) (sizeof(layout_facts) / sizeof(layout_facts[0])));
}
END_TEST

START_TEST(test_enum_values)
{
	const long	ours[] = {PCT_DB_STARTUP, PCT_DB_SHUTDOWNED,
		PCT_DB_SHUTDOWNED_IN_RECOVERY, PCT_DB_SHUTDOWNING,
		PCT_DB_IN_CRASH_RECOVERY, PCT_DB_IN_ARCHIVE_RECOVERY,
	PCT_DB_IN_PRODUCTION};

	ck_assert_uint_eq(sizeof(server_dbstates) / sizeof(server_dbstates[0]),
					  sizeof(ours) / sizeof(ours[0]));
	for (size_t i = 0; i < 7; i++)
		ck_assert_int_eq(ours[i], server_dbstates[i]);
	/* WalLevel lives in access/xlog.h, which is backend-only; the real
	 * cluster test checks "replica" against pg_controldata instead. */
}
END_TEST

/* ---- CRC-32C ---- */

START_TEST(test_crc_known_answers)
{
	uint8_t		buf[32];

	ck_assert_uint_eq(PCT_CRC32C_FINAL(pct_crc32c(PCT_CRC32C_INIT,
												  "123456789", 9)),
					  0xE3069283u);
	ck_assert_uint_eq(PCT_CRC32C_FINAL(pct_crc32c(PCT_CRC32C_INIT, "", 0)),
					  0u);
	/* RFC 3720 (iSCSI) B.4 test vectors. */
	memset(buf, 0, sizeof(buf));
	ck_assert_uint_eq(PCT_CRC32C_FINAL(pct_crc32c(PCT_CRC32C_INIT, buf, 32)),
					  0x8A9136AAu);
	memset(buf, 0xFF, sizeof(buf));
	ck_assert_uint_eq(PCT_CRC32C_FINAL(pct_crc32c(PCT_CRC32C_INIT, buf, 32)),
					  0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t) i;
	ck_assert_uint_eq(PCT_CRC32C_FINAL(pct_crc32c(PCT_CRC32C_INIT, buf, 32)),
					  0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t) (31 - i);
	ck_assert_uint_eq(PCT_CRC32C_FINAL(pct_crc32c(PCT_CRC32C_INIT, buf, 32)),
					  0x113FDB5Cu);
	/* The reference of this file agrees on the first vector. */
	ck_assert_uint_eq(ref_crc32c((const uint8_t *) "123456789", 9),
					  0xE3069283u);
}
END_TEST

/* Every length, alignment and split point agrees with the bitwise
 * reference (covers the 8-byte and the byte-at-a-time paths). */
START_TEST(test_crc_matches_reference)
{
	uint8_t		buf[300];
	uint32_t	seed = 12345;

	for (size_t i = 0; i < sizeof(buf); i++)
	{
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t) (seed >> 16);
	}
	for (size_t start = 0; start < 8; start++)
		for (size_t len = 0; len + start <= 80; len++)
		{
			uint32_t	want = ref_crc32c(buf + start, len);

			ck_assert_uint_eq(PCT_CRC32C_FINAL(pct_crc32c(PCT_CRC32C_INIT,
														  buf + start, len)),
							  want);
			for (size_t cut = 0; cut <= len; cut++)
			{
				uint32_t	c = pct_crc32c(PCT_CRC32C_INIT, buf + start, cut);

				c = pct_crc32c(c, buf + start + cut, len - cut);
				ck_assert_uint_eq(PCT_CRC32C_FINAL(c), want);
			}
		}
	ck_assert_uint_eq(PCT_CRC32C_FINAL(pct_crc32c(PCT_CRC32C_INIT, buf,
												  sizeof(buf))),
					  ref_crc32c(buf, sizeof(buf)));
}
END_TEST

/* ---- real pg_control from initdb ---- */

START_TEST(test_real_read)
{
	pct_control ctl;
	char	   *pgdata,
			   *cd;
	char		v[256],
				want[256];
	int			status;

	need_template();
	pgdata = make_pgdata(tmpl_control, CTL_SIZE, 0600);
	unit_capture_log();
	ck_assert_int_eq(pct_control_read(pgdata, &ctl), PCT_OK);
	ck_assert_mem_eq(ctl.raw, tmpl_control, CTL_SIZE);
	ck_assert_uint_eq(ctl.version, 1300);
	ck_assert_uint_eq(ctl.blcksz, 8192);
	ck_assert_uint_eq(ctl.xlog_blcksz, 8192);
	ck_assert_uint_eq(ctl.encryption, 0);
	ck_assert_int_eq(pct_control_keylen(&ctl, PCT_GEN2), 0);
	/* initdb leaves padding 292..295 zero, and a shut down cluster. */
	ck_assert_uint_eq(get32(ctl.raw + 292), 0);
	ck_assert_int_eq(ctl.state, PCT_DB_SHUTDOWNED);

	/* Every field agrees with what pg_controldata prints. */
	cd = controldata(pgdata, &status);
	ck_assert_msg(status == 0, "pg_controldata failed: %s", cd);
	ck_assert_ptr_null(strstr(cd, "WARNING"));
	snprintf(want, sizeof(want), "%llu",
			 (unsigned long long) ctl.system_identifier);
	ck_assert_str_eq(cd_value(cd, "Database system identifier", v, sizeof(v)),
					 want);
	ck_assert_str_eq(cd_value(cd, "pg_control version number", v, sizeof(v)),
					 "1300");
	snprintf(want, sizeof(want), "%u", ctl.catalog_version);
	ck_assert_str_eq(cd_value(cd, "Catalog version number", v, sizeof(v)),
					 want);
	ck_assert_str_eq(cd_value(cd, "Database cluster state", v, sizeof(v)),
					 pct_dbstate_str(ctl.state));
	ck_assert_str_eq(cd_value(cd, "wal_level setting", v, sizeof(v)),
					 ctl.wal_level == PCT_WAL_LEVEL_REPLICA ? "replica" : "?");
	snprintf(want, sizeof(want), "%u", ctl.blcksz);
	ck_assert_str_eq(cd_value(cd, "Database block size", v, sizeof(v)), want);
	snprintf(want, sizeof(want), "%u", ctl.relseg_size);
	ck_assert_str_eq(cd_value(cd, "Blocks per segment of large relation", v,
							  sizeof(v)), want);
	snprintf(want, sizeof(want), "%u", ctl.xlog_blcksz);
	ck_assert_str_eq(cd_value(cd, "WAL block size", v, sizeof(v)), want);
	snprintf(want, sizeof(want), "%u", ctl.xlog_seg_size);
	ck_assert_str_eq(cd_value(cd, "Bytes per WAL segment", v, sizeof(v)),
					 want);
	/* initdb -k: checksums on. */
	ck_assert_uint_eq(ctl.data_checksum_version, 1);
	ck_assert_str_eq(cd_value(cd, "Data page checksum version", v, sizeof(v)),
					 "1");
	snprintf(want, sizeof(want), "%X/%X", (unsigned) (ctl.unlogged_lsn >> 32),
			 (unsigned) ctl.unlogged_lsn);
	ck_assert_str_eq(cd_value(cd, "Fake LSN counter for unlogged rels", v,
							  sizeof(v)), want);
	free(cd);
	unit_rmtree(pgdata);
	free(pgdata);
}
END_TEST

/* 1300 -> 1400 -> 1300 is byte-identical; every step is a valid file. */
START_TEST(test_real_roundtrip)
{
	pct_control ctl,
				again;

	need_template();
	unit_capture_log();
	ck_assert_int_eq(pct_control_parse(tmpl_control, CTL_SIZE, &ctl), PCT_OK);
	ck_assert_int_eq(pct_control_to_1400(&ctl, PCT_METHOD_AES192), PCT_OK);
	ck_assert_uint_eq(ctl.version, 1400);
	ck_assert_uint_eq(ctl.encryption, PCT_METHOD_AES192);
	/* Only the version, the field and the CRC changed. */
	ck_assert_mem_eq(ctl.raw, tmpl_control, 8);
	ck_assert_uint_eq(get32(ctl.raw + 8), 1400);
	ck_assert_mem_eq(ctl.raw + 12, tmpl_control + 12, 288 - 12);
	ck_assert_uint_eq(get32(ctl.raw + 288), PCT_METHOD_AES192);
	ck_assert_uint_eq(get32(ctl.raw + 292), ref_crc32c(ctl.raw, 292));
	ck_assert_mem_eq(ctl.raw + 296, tmpl_control + 296, CTL_SIZE - 296);
	ck_assert_int_eq(pct_control_keylen(&ctl, PCT_GEN2), 24);

	/* The converted bytes parse as a 1400 file with the same fields. */
	ck_assert_int_eq(pct_control_parse(ctl.raw, CTL_SIZE, &again), PCT_OK);
	ck_assert_uint_eq(again.version, 1400);
	ck_assert_uint_eq(again.encryption, PCT_METHOD_AES192);
	ck_assert_uint_eq(again.system_identifier, ctl.system_identifier);
	ck_assert_uint_eq(again.xlog_seg_size, ctl.xlog_seg_size);

	ck_assert_int_eq(pct_control_to_1300(&again), PCT_OK);
	ck_assert_uint_eq(again.version, 1300);
	ck_assert_uint_eq(again.encryption, 0);
	ck_assert_mem_eq(again.raw, tmpl_control, CTL_SIZE);
	ck_assert_int_eq(pct_control_keylen(&again, PCT_GEN2), 0);
}
END_TEST

/* Written to disk: the stock pg_controldata sees a foreign 1400 file (its
 * CRC check fails), and a clean 1300 file after the way back. */
START_TEST(test_real_write_convert)
{
	pct_control ctl;
	uint8_t		disk[CTL_SIZE];
	char	   *pgdata,
			   *cd;
	char		v[256];
	int			status;
	struct stat st;
	char		path[4096];

	need_template();
	pgdata = make_pgdata(tmpl_control, CTL_SIZE, 0600);
	unit_capture_log();
	ck_assert_int_eq(pct_control_read(pgdata, &ctl), PCT_OK);
	ck_assert_int_eq(pct_control_to_1400(&ctl, 256), PCT_OK);
	ck_assert_int_eq(pct_control_write(pgdata, &ctl), PCT_OK);
	read_control_file(pgdata, disk);
	ck_assert_mem_eq(disk, ctl.raw, CTL_SIZE);
	cd = controldata(pgdata, &status);
	ck_assert_str_eq(cd_value(cd, "pg_control version number", v, sizeof(v)),
					 "1400");
	ck_assert_msg(strstr(cd, "CRC checksum does not match") != NULL,
				  "pg_controldata accepted a 1400 file: %s", cd);
	free(cd);

	/* Read back from disk, then convert back and write. */
	ck_assert_int_eq(pct_control_read(pgdata, &ctl), PCT_OK);
	ck_assert_uint_eq(ctl.encryption, 256);
	ck_assert_int_eq(pct_control_keylen(&ctl, PCT_GEN1), 32);
	ck_assert_int_eq(pct_control_to_1300(&ctl), PCT_OK);
	ck_assert_int_eq(pct_control_write(pgdata, &ctl), PCT_OK);
	read_control_file(pgdata, disk);
	ck_assert_mem_eq(disk, tmpl_control, CTL_SIZE);
	cd = controldata(pgdata, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_null(strstr(cd, "WARNING"));
	ck_assert_str_eq(cd_value(cd, "pg_control version number", v, sizeof(v)),
					 "1300");
	free(cd);

	snprintf(path, sizeof(path), "%s/global/pg_control", pgdata);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	unit_rmtree(pgdata);
	free(pgdata);
}
END_TEST

/* unloggedLSN is stored where the server reads it, in both versions. */
START_TEST(test_real_unlogged_lsn)
{
	pct_control ctl,
				again;
	char	   *pgdata,
			   *cd;
	char		v[256];
	int			status;
	const uint64_t lsn = 0x00000001ABCDEF01ull;

	need_template();
	pgdata = make_pgdata(tmpl_control, CTL_SIZE, 0600);
	unit_capture_log();
	ck_assert_int_eq(pct_control_read(pgdata, &ctl), PCT_OK);
	ck_assert_int_eq(pct_control_set_unlogged_lsn(&ctl, lsn), PCT_OK);
	ck_assert_uint_eq(ctl.unlogged_lsn, lsn);
	ck_assert_uint_eq(get64(ctl.raw + 128), lsn);
	ck_assert_mem_eq(ctl.raw, tmpl_control, 128);
	ck_assert_mem_eq(ctl.raw + 136, tmpl_control + 136, 288 - 136);
	ck_assert_uint_eq(get32(ctl.raw + 288), ref_crc32c(ctl.raw, 288));
	ck_assert_int_eq(pct_control_write(pgdata, &ctl), PCT_OK);
	cd = controldata(pgdata, &status);
	ck_assert_int_eq(status, 0);
	ck_assert_ptr_null(strstr(cd, "WARNING"));
	ck_assert_str_eq(cd_value(cd, "Fake LSN counter for unlogged rels", v,
							  sizeof(v)), "1/ABCDEF01");
	free(cd);

	/* In 1400 the CRC at 292 is the one recomputed. */
	ck_assert_int_eq(pct_control_to_1400(&ctl, PCT_METHOD_AES128), PCT_OK);
	ck_assert_int_eq(pct_control_set_unlogged_lsn(&ctl, lsn + 5), PCT_OK);
	ck_assert_uint_eq(get32(ctl.raw + 292), ref_crc32c(ctl.raw, 292));
	ck_assert_uint_eq(get32(ctl.raw + 288), PCT_METHOD_AES128);
	ck_assert_int_eq(pct_control_parse(ctl.raw, CTL_SIZE, &again), PCT_OK);
	ck_assert_uint_eq(again.unlogged_lsn, lsn + 5);
	unit_rmtree(pgdata);
	free(pgdata);
}
END_TEST

/* The file's mode (here group-readable, as initdb -g makes it) is kept,
 * and no temporary file is left behind. */
START_TEST(test_write_keeps_mode)
{
	pct_control ctl;
	char	   *pgdata;
	char		path[4096];
	struct stat st;
	int			entries = 0;

	need_template();
	pgdata = make_pgdata(tmpl_control, CTL_SIZE, 0640);
	unit_capture_log();
	ck_assert_int_eq(pct_control_read(pgdata, &ctl), PCT_OK);
	ck_assert_int_eq(pct_control_to_1400(&ctl, PCT_METHOD_AES256), PCT_OK);
	ck_assert_int_eq(pct_control_write(pgdata, &ctl), PCT_OK);
	snprintf(path, sizeof(path), "%s/global/pg_control", pgdata);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_size, CTL_SIZE);
	{
		DIR		   *d;
		struct dirent *de;

		snprintf(path, sizeof(path), "%s/global", pgdata);
		d = opendir(path);
		ck_assert_ptr_nonnull(d);
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
			{
				ck_assert_str_eq(de->d_name, "pg_control");
				entries++;
			}
		closedir(d);
	}
	ck_assert_int_eq(entries, 1);
	unit_rmtree(pgdata);
	free(pgdata);
}
END_TEST

/* ---- refusals ---- */

START_TEST(test_refuse_nonzero_padding)
{
	uint8_t		buf[CTL_SIZE];
	pct_control ctl;
	uint8_t		before[CTL_SIZE];

	need_template();
	for (int b = 292; b < 296; b++)
	{
		memcpy(buf, tmpl_control, CTL_SIZE);
		buf[b] = 0x40;
		fix_crc(buf, 1300);
		unit_capture_log();
		/* Still a valid 1300 file: the padding is not covered... */
		ck_assert_int_eq(pct_control_parse(buf, CTL_SIZE, &ctl), PCT_OK);
		memcpy(before, ctl.raw, CTL_SIZE);
		/* ... but it cannot take the 1400 CRC. */
		ck_assert_int_eq(pct_control_to_1400(&ctl, PCT_METHOD_AES128),
						 PCT_ERR_FORMAT);
		ck_assert_msg(strstr(unit_last_error(), "version 1400") != NULL,
					  "message: %s", unit_last_error());
		ck_assert_mem_eq(ctl.raw, before, CTL_SIZE);
		ck_assert_uint_eq(ctl.version, 1300);
	}
}
END_TEST

/* Versions other than 1300/1400 are refused with the version named. */
START_TEST(test_refuse_other_versions)
{
	const uint32_t versions[] = {0, 942, 1002, 1100, 1201, 1301, 1500,
	1300u << 16, 1400u << 16, 0xFFFFFFFFu};

	need_template();
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
	{
		uint8_t		buf[CTL_SIZE];
		pct_control ctl;
		char		want[32];

		memcpy(buf, tmpl_control, CTL_SIZE);
		put32(buf + 8, versions[i]);
		/* A valid CRC at either place, so only the version is wrong. */
		fix_crc(buf, 1300);
		fix_crc(buf, 1400);
		unit_capture_log();
		ck_assert_int_eq(pct_control_parse(buf, CTL_SIZE, &ctl),
						 PCT_ERR_FORMAT);
		snprintf(want, sizeof(want), "version %u", versions[i]);
		ck_assert_msg(strstr(unit_last_error(), want) != NULL,
					  "message does not name %s: %s", want, unit_last_error());
	}
	/* A byte-swapped file is explained. */
	{
		uint8_t		buf[CTL_SIZE];
		pct_control ctl;

		memcpy(buf, tmpl_control, CTL_SIZE);
		put32(buf + 8, 1300u << 16);
		unit_capture_log();
		ck_assert_int_eq(pct_control_parse(buf, CTL_SIZE, &ctl),
						 PCT_ERR_FORMAT);
		ck_assert_ptr_nonnull(strstr(unit_all_log(), "endianness"));
	}
}
END_TEST

/* Conversions only go from the version they start at. */
START_TEST(test_refuse_wrong_direction)
{
	pct_control ctl;
	uint8_t		before[CTL_SIZE];

	need_template();
	unit_capture_log();
	ck_assert_int_eq(pct_control_parse(tmpl_control, CTL_SIZE, &ctl), PCT_OK);
	ck_assert_int_eq(pct_control_to_1300(&ctl), PCT_ERR_STATE);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "1300"));
	ck_assert_mem_eq(ctl.raw, tmpl_control, CTL_SIZE);

	ck_assert_int_eq(pct_control_to_1400(&ctl, PCT_METHOD_AES128), PCT_OK);
	memcpy(before, ctl.raw, CTL_SIZE);
	ck_assert_int_eq(pct_control_to_1400(&ctl, PCT_METHOD_AES256),
					 PCT_ERR_STATE);
	ck_assert_mem_eq(ctl.raw, before, CTL_SIZE);
	ck_assert_uint_eq(ctl.encryption, PCT_METHOD_AES128);

	/* Field values that are neither a method nor a key length in bits. */
	ck_assert_int_eq(pct_control_parse(tmpl_control, CTL_SIZE, &ctl), PCT_OK);
	ck_assert_int_eq(pct_control_to_1400(&ctl, 0), PCT_ERR_ARG);
	ck_assert_int_eq(pct_control_to_1400(&ctl, 4), PCT_ERR_ARG);
	ck_assert_int_eq(pct_control_to_1400(&ctl, 512), PCT_ERR_ARG);
	ck_assert_mem_eq(ctl.raw, tmpl_control, CTL_SIZE);
}
END_TEST

START_TEST(test_refuse_crc_damage)
{
	/* Offsets covered by the CRC in 1300, the CRC itself, the 1400 field. */
	const size_t offs[] = {0, 12, 100, 216, 287, 288, 291};

	need_template();
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
	{
		uint8_t		buf[CTL_SIZE];
		pct_control ctl;

		/* Flip one bit (not of the version: that is another error). */
		memcpy(buf, tmpl_control, CTL_SIZE);
		buf[offs[i]] ^= 0x10;
		unit_capture_log();
		ck_assert_msg(pct_control_parse(buf, CTL_SIZE, &ctl) == PCT_ERR_FORMAT,
					  "damage at %zu not detected", offs[i]);
		ck_assert_ptr_nonnull(strstr(unit_last_error(), "CRC"));
	}
	/* In 1400 the field at 288 and the CRC at 292 are covered/checked. */
	for (size_t off = 286; off < 296; off++)
	{
		pct_control ctl;
		uint8_t		buf[CTL_SIZE];

		ck_assert_int_eq(pct_control_parse(tmpl_control, CTL_SIZE, &ctl),
						 PCT_OK);
		ck_assert_int_eq(pct_control_to_1400(&ctl, PCT_METHOD_AES128), PCT_OK);
		memcpy(buf, ctl.raw, CTL_SIZE);
		buf[off] ^= 0x01;
		unit_capture_log();
		ck_assert_msg(pct_control_parse(buf, CTL_SIZE, &ctl) == PCT_ERR_FORMAT,
					  "1400: damage at %zu not detected", off);
	}
	/* Bytes after the CRC are not covered, as in the server. */
	{
		uint8_t		buf[CTL_SIZE];
		pct_control ctl;

		memcpy(buf, tmpl_control, CTL_SIZE);
		buf[5000] ^= 0xFF;
		ck_assert_int_eq(pct_control_parse(buf, CTL_SIZE, &ctl), PCT_OK);
	}
}
END_TEST

/* A change must not launder bytes altered behind the library's back. */
START_TEST(test_refuse_stale_raw)
{
	pct_control ctl;
	char	   *pgdata;
	uint8_t		disk[CTL_SIZE];

	need_template();
	pgdata = make_pgdata(tmpl_control, CTL_SIZE, 0600);
	unit_capture_log();
	ck_assert_int_eq(pct_control_read(pgdata, &ctl), PCT_OK);
	ctl.raw[40] ^= 1;
	ck_assert_int_eq(pct_control_to_1400(&ctl, PCT_METHOD_AES128),
					 PCT_ERR_FORMAT);
	ck_assert_int_eq(pct_control_set_unlogged_lsn(&ctl, 2000),
					 PCT_ERR_FORMAT);
	ck_assert_int_eq(pct_control_write(pgdata, &ctl), PCT_ERR_FORMAT);
	read_control_file(pgdata, disk);
	ck_assert_mem_eq(disk, tmpl_control, CTL_SIZE);
	unit_rmtree(pgdata);
	free(pgdata);
}
END_TEST

START_TEST(test_refuse_wrong_size)
{
	uint8_t    *big = calloc(1, CTL_SIZE + 1);
	pct_control ctl;
	char	   *pgdata;

	need_template();
	memcpy(big, tmpl_control, CTL_SIZE);
	unit_capture_log();
	ck_assert_int_eq(pct_control_parse(big, CTL_SIZE - 1, &ctl),
					 PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "8191 bytes"));
	ck_assert_int_eq(pct_control_parse(big, CTL_SIZE + 1, &ctl),
					 PCT_ERR_FORMAT);
	ck_assert_int_eq(pct_control_parse(big, 0, &ctl), PCT_ERR_FORMAT);

	/* The same from files. */
	pgdata = make_pgdata(big, 296, 0600);
	ck_assert_int_eq(pct_control_read(pgdata, &ctl), PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "296 bytes"));
	unit_rmtree(pgdata);
	free(pgdata);
	pgdata = make_pgdata(big, CTL_SIZE + 1, 0600);
	ck_assert_int_eq(pct_control_read(pgdata, &ctl), PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "8192"));
	unit_rmtree(pgdata);
	free(pgdata);
	free(big);
}
END_TEST

START_TEST(test_refuse_block_sizes)
{
	struct
	{
		size_t		off;
		uint32_t	value;
		const char *says;
	}			cases[] = {
		{PCT_CTL_OFF_BLCKSZ, 16384, "block size 16384"},
		{PCT_CTL_OFF_BLCKSZ, 4096, "block size 4096"},
		{PCT_CTL_OFF_XLOG_BLCKSZ, 4096, "WAL block size 4096"},
		{PCT_CTL_OFF_XLOG_BLCKSZ, 65536, "WAL block size 65536"},
		{PCT_CTL_OFF_RELSEG_SIZE, 0, "segment size 0"},
		{PCT_CTL_OFF_XLOG_SEG_SIZE, 3 * 1024 * 1024, "3145728"},
		{PCT_CTL_OFF_XLOG_SEG_SIZE, 512 * 1024, "524288"},
	};

	need_template();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		uint8_t		buf[CTL_SIZE];
		pct_control ctl;

		for (uint32_t version = 1300; version <= 1400; version += 100)
		{
			memcpy(buf, tmpl_control, CTL_SIZE);
			put32(buf + 8, version);
			put32(buf + cases[i].off, cases[i].value);
			fix_crc(buf, version);
			unit_capture_log();
			ck_assert_int_eq(pct_control_parse(buf, CTL_SIZE, &ctl),
							 PCT_ERR_FORMAT);
			ck_assert_msg(strstr(unit_last_error(), cases[i].says) != NULL,
						  "message: %s", unit_last_error());
		}
	}
	/* A valid other WAL segment size is fine. */
	{
		uint8_t		buf[CTL_SIZE];
		pct_control ctl;

		memcpy(buf, tmpl_control, CTL_SIZE);
		put32(buf + PCT_CTL_OFF_XLOG_SEG_SIZE, 64 * 1024 * 1024);
		fix_crc(buf, 1300);
		ck_assert_int_eq(pct_control_parse(buf, CTL_SIZE, &ctl), PCT_OK);
		ck_assert_uint_eq(ctl.xlog_seg_size, 64 * 1024 * 1024);
	}
}
END_TEST

/* ---- without initdb ---- */

START_TEST(test_read_missing)
{
	pct_control ctl;
	char	   *dir = unit_mkdtemp();

	memset(&ctl, 0, sizeof(ctl));
	unit_capture_log();
	ck_assert_int_eq(pct_control_read(dir, &ctl), PCT_ERR_SYS);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "could not open file \""));
	ck_assert_ptr_nonnull(strstr(unit_last_error(),
								 "/global/pg_control\": No such file or directory"));
	/* Zeroed control data is never written. */
	ck_assert_int_eq(pct_control_write(dir, &ctl), PCT_ERR_FORMAT);
	unit_rmtree(dir);
	free(dir);
}
END_TEST

/* A synthetic 1400 file: fields land in the struct. */
START_TEST(test_parse_fields)
{
	uint8_t		buf[CTL_SIZE];
	pct_control ctl;

	memset(buf, 0, sizeof(buf));
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t) (0x11 * (i + 1));
	put32(buf + 8, 1400);
	put32(buf + 12, 202209061);
	put32(buf + 16, PCT_DB_SHUTDOWNED_IN_RECOVERY);
	put32(buf + 128, 0x89ABCDEF);
	put32(buf + 132, 0x01234567);
	put32(buf + 172, PCT_WAL_LEVEL_LOGICAL);
	put32(buf + 216, 8192);
	put32(buf + 220, 131072);
	put32(buf + 224, 8192);
	put32(buf + 228, 1024 * 1024 * 1024);
	put32(buf + 252, 1);
	put32(buf + 288, PCT_METHOD_AES256);
	fix_crc(buf, 1400);
	unit_capture_log();
	ck_assert_int_eq(pct_control_parse(buf, CTL_SIZE, &ctl), PCT_OK);
	ck_assert_uint_eq(ctl.system_identifier, 0x8877665544332211ull);
	ck_assert_uint_eq(ctl.catalog_version, 202209061);
	ck_assert_int_eq(ctl.state, PCT_DB_SHUTDOWNED_IN_RECOVERY);
	ck_assert_uint_eq(ctl.unlogged_lsn, 0x0123456789ABCDEFull);
	ck_assert_int_eq(ctl.wal_level, PCT_WAL_LEVEL_LOGICAL);
	ck_assert_uint_eq(ctl.relseg_size, 131072);
	ck_assert_uint_eq(ctl.xlog_seg_size, 1024 * 1024 * 1024);
	ck_assert_uint_eq(ctl.data_checksum_version, 1);
	ck_assert_uint_eq(ctl.encryption, PCT_METHOD_AES256);
	ck_assert_uint_eq(ctl.version, 1400);
	ck_assert_int_eq(pct_control_keylen(&ctl, PCT_GEN2), 32);
	/* The field is a method, not a length in bits. */
	ck_assert_int_eq(pct_control_keylen(&ctl, PCT_GEN1), 0);
	ck_assert_mem_eq(ctl.raw, buf, CTL_SIZE);
}
END_TEST

START_TEST(test_dbstate_str)
{
	ck_assert_str_eq(pct_dbstate_str(0), "starting up");
	ck_assert_str_eq(pct_dbstate_str(1), "shut down");
	ck_assert_str_eq(pct_dbstate_str(2), "shut down in recovery");
	ck_assert_str_eq(pct_dbstate_str(3), "shutting down");
	ck_assert_str_eq(pct_dbstate_str(4), "in crash recovery");
	ck_assert_str_eq(pct_dbstate_str(5), "in archive recovery");
	ck_assert_str_eq(pct_dbstate_str(6), "in production");
	ck_assert_str_eq(pct_dbstate_str(7), "unrecognized status code");
	ck_assert_str_eq(pct_dbstate_str(-1), "unrecognized status code");
}
END_TEST

START_TEST(test_keylen)
{
	pct_control ctl;
	const struct
	{
		uint32_t	field;
		int			gen1;
		int			gen2;
	}			cases[] = {
		{0, 0, 0}, {1, 0, 16}, {2, 0, 24}, {3, 0, 32}, {4, 0, 0},
		{16, 0, 0}, {32, 0, 0}, {128, 16, 0}, {192, 24, 0}, {256, 32, 0},
		{255, 0, 0}, {512, 0, 0},
	};

	memset(&ctl, 0, sizeof(ctl));
	ctl.version = 1400;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		ctl.encryption = cases[i].field;
		ck_assert_int_eq(pct_control_keylen(&ctl, PCT_GEN1), cases[i].gen1);
		ck_assert_int_eq(pct_control_keylen(&ctl, PCT_GEN2), cases[i].gen2);
		ck_assert_int_eq(pct_control_keylen(&ctl, 3), 0);
	}
	/* A 1300 file has no field. */
	ctl.version = 1300;
	ctl.encryption = 3;
	ck_assert_int_eq(pct_control_keylen(&ctl, PCT_GEN2), 0);
}
END_TEST

/* pct_control_write is one durable step, taken after the file is durable:
 * stopped there by the fault hook, the new contents are on disk. */
START_TEST(test_write_fault_step)
{
	uint8_t		buf[CTL_SIZE];
	uint8_t		disk[CTL_SIZE];
	pct_control ctl;
	char	   *pgdata;
	pid_t		pid;
	int			status;

	memset(buf, 0, sizeof(buf));
	put32(buf + 8, 1300);
	put32(buf + 216, 8192);
	put32(buf + 220, 131072);
	put32(buf + 224, 8192);
	put32(buf + 228, 16 * 1024 * 1024);
	fix_crc(buf, 1300);
	pgdata = make_pgdata(buf, CTL_SIZE, 0600);
	unit_capture_log();
	ck_assert_int_eq(pct_control_read(pgdata, &ctl), PCT_OK);
	ck_assert_int_eq(pct_control_to_1400(&ctl, PCT_METHOD_AES128), PCT_OK);

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
	{
		char		n[16];
		int			devnull = open("/dev/null", O_WRONLY);

		/* The next step is the one after this probe. */
		snprintf(n, sizeof(n), "%d", pct_durable_step("probe") + 1);
		setenv("PCT_FAULT_STEP", n, 1);
		if (devnull >= 0)
			dup2(devnull, 2);
		pct_set_log(NULL, NULL);
		(void) pct_control_write(pgdata, &ctl);
		_exit(0);				/* not reached when the step is taken */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), PCT_FAULT_EXIT);
	read_control_file(pgdata, disk);
	ck_assert_mem_eq(disk, ctl.raw, CTL_SIZE);
	unit_rmtree(pgdata);
	free(pgdata);
}
END_TEST

static Suite *
control_suite(void)
{
	Suite	   *s = suite_create("control");
	TCase	   *tc = tcase_create("format");
	TCase	   *real = tcase_create("initdb");

	tcase_add_test(tc, test_layout_offsets);
	tcase_add_test(tc, test_layout_complete);
	tcase_add_test(tc, test_enum_values);
	tcase_add_test(tc, test_crc_known_answers);
	tcase_add_test(tc, test_crc_matches_reference);
	tcase_add_test(tc, test_read_missing);
	tcase_add_test(tc, test_parse_fields);
	tcase_add_test(tc, test_dbstate_str);
	tcase_add_test(tc, test_keylen);
	tcase_add_test(tc, test_write_fault_step);
	suite_add_tcase(s, tc);

	/* One initdb for the whole case, made before the tests fork. */
	tcase_add_unchecked_fixture(real, template_setup, template_teardown);
	tcase_set_timeout(real, 120);
	tcase_add_test(real, test_real_read);
	tcase_add_test(real, test_real_roundtrip);
	tcase_add_test(real, test_real_write_convert);
	tcase_add_test(real, test_real_unlogged_lsn);
	tcase_add_test(real, test_write_keeps_mode);
	tcase_add_test(real, test_refuse_nonzero_padding);
	tcase_add_test(real, test_refuse_other_versions);
	tcase_add_test(real, test_refuse_wrong_direction);
	tcase_add_test(real, test_refuse_crc_damage);
	tcase_add_test(real, test_refuse_stale_raw);
	tcase_add_test(real, test_refuse_wrong_size);
	tcase_add_test(real, test_refuse_block_sizes);
	suite_add_tcase(s, real);
	return s;
}

UNIT_MAIN(control_suite)
