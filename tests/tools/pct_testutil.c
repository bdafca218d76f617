/*
 * pct_testutil.c
 *	  Test-only helper of the TAP tests (never installed): small operations
 *	  on a data directory through libpgcrypttools.
 *
 *	  pct_testutil control-show PGDATA
 *		  print "version N", "encryption N" (0 for version 1300), "state N",
 *		  "checksums N" of global/pg_control, one per line
 *	  pct_testutil control-1400 PGDATA VALUE
 *		  convert pg_control from 1300 to 1400 with the encryption field
 *		  VALUE (method 1..3 for generation 2, key length in bits for 1)
 *	  pct_testutil control-1300 PGDATA
 *		  convert pg_control from 1400 back to 1300
 *	  pct_testutil unwrap KEYDIR KEKHEX
 *		  check a key sub-directory (e.g. $PGDATA/pg_cryptokeys/live) for
 *		  the current user, unwrap both keys with the KEK and print
 *		  "generation G", "keylen L", "key 0 HEX", "key 1 HEX" (HEX: the L
 *		  data key bytes)
 *
 * Exit 0 on success, 1 on failure (the library's messages on stderr), 2 on
 * bad usage.  It prints data keys: a test tool, never for real clusters.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg_cryptokeys.h"

static const char *progname = "pct_testutil";

static void
log_stderr(void *arg, pct_level level, const char *msg, const char *detail,
		   const char *hint)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};

	(void) arg;
	fprintf(stderr, "%s: %s: %s\n", progname,
			level <= PCT_LOG_ERROR ? names[level] : "log", msg);
	if (detail)
		fprintf(stderr, "%s: detail: %s\n", progname, detail);
	if (hint)
		fprintf(stderr, "%s: hint: %s\n", progname, hint);
}

static void
finding_stderr(void *arg, const char *path, const char *what)
{
	(void) arg;
	fprintf(stderr, "%s: problem: %s: %s\n", progname, path, what);
}

static int
failed(const char *what, pct_rc rc)
{
	fprintf(stderr, "%s: %s failed: %s\n", progname, what, pct_rc_str(rc));
	return 1;
}

static int
usage(void)
{
	fprintf(stderr,
			"usage: %s control-show PGDATA\n"
			"       %s control-1400 PGDATA VALUE\n"
			"       %s control-1300 PGDATA\n"
			"       %s unwrap KEYDIR KEKHEX\n",
			progname, progname, progname, progname);
	return 2;
}

static int
control_show(const char *pgdata)
{
	pct_control ctl;
	pct_rc		rc;

	if ((rc = pct_control_read(pgdata, &ctl)) != PCT_OK)
		return failed("reading pg_control", rc);
	printf("version %" PRIu32 "\n", ctl.version);
	printf("encryption %" PRIu32 "\n",
		   ctl.version == PCT_CONTROL_VERSION_ENCRYPTED ? ctl.encryption : 0);
	printf("state %" PRId32 "\n", ctl.state);
	printf("checksums %" PRIu32 "\n", ctl.data_checksum_version);
	return 0;
}

static int
control_convert(const char *pgdata, const char *value)
{
	pct_control ctl;
	pct_rc		rc;

	if ((rc = pct_control_read(pgdata, &ctl)) != PCT_OK)
		return failed("reading pg_control", rc);
	if (value)
	{
		char	   *end;
		unsigned long v = strtoul(value, &end, 10);

		if (*value == '\0' || *end != '\0' || v > UINT32_MAX)
		{
			fprintf(stderr, "%s: invalid value \"%s\"\n", progname, value);
			return 2;
		}
		rc = pct_control_to_1400(&ctl, (uint32_t) v);
	}
	else
		rc = pct_control_to_1300(&ctl);
	if (rc != PCT_OK)
		return failed("converting pg_control", rc);
	if ((rc = pct_control_write(pgdata, &ctl)) != PCT_OK)
		return failed("writing pg_control", rc);
	return 0;
}

static int
unwrap(const char *dir, const char *kekhex)
{
	uint8_t    *kek;
	pct_keyset *ks;
	int			generation = 0;
	int			problems = 0;
	int			status = 1;
	pct_rc		rc;

	kek = pct_secure_alloc(PCT_KEK_LEN);
	ks = pct_secure_alloc(sizeof(*ks));
	if (kek == NULL || ks == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		goto out;
	}
	if ((rc = pct_kek_parse(kekhex, strlen(kekhex), kek)) != PCT_OK)
	{
		failed("parsing the KEK", rc);
		goto out;
	}
	rc = pct_keydir_check(dir, geteuid(), &generation, finding_stderr, NULL,
						  &problems);
	if (rc != PCT_OK)
	{
		failed("checking the key directory", rc);
		goto out;
	}
	if (problems > 0)
	{
		fprintf(stderr, "%s: %d problem(s) in \"%s\"\n", progname, problems,
				dir);
		goto out;
	}
	rc = pct_keydir_read(dir, geteuid(), kek, 0, ks);
	if (rc != PCT_OK)
	{
		failed("unwrapping", rc);
		goto out;
	}
	printf("generation %d\n", ks->generation);
	printf("keylen %d\n", ks->keylen);
	for (int id = 0; id < PCT_NUM_KEYS; id++)
	{
		const uint8_t *b = PCT_DATAKEY_BYTES(&ks->key[id]);

		printf("key %d ", id);
		for (int i = 0; i < ks->keylen; i++)
			printf("%02x", b[i]);
		printf("\n");
	}
	status = fflush(stdout) == 0 ? 0 : 1;
out:
	if (kek)
		pct_secure_free(kek, PCT_KEK_LEN);
	if (ks)
		pct_secure_free(ks, sizeof(*ks));
	return status;
}

int
main(int argc, char **argv)
{
	pct_set_log(log_stderr, NULL);
	pct_set_sync(false);		/* test clusters run with fsync = off */

	if (argc == 3 && strcmp(argv[1], "control-show") == 0)
		return control_show(argv[2]);
	if (argc == 4 && strcmp(argv[1], "control-1400") == 0)
		return control_convert(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "control-1300") == 0)
		return control_convert(argv[2], NULL);
	if (argc == 4 && strcmp(argv[1], "unwrap") == 0)
		return unwrap(argv[2], argv[3]);
	return usage();
}
