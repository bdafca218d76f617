/*
 * control.c
 *	  pg_control: CRC-32C, reading and checking, 1300 <-> 1400 conversion,
 *	  unloggedLSN updates and durable rewriting (FORMAT.md section 2).
 *
 * Owns: pct_crc32c(), pct_control_*(), pct_dbstate_str().
 *
 * A pg_control is accepted only when it is exactly 8192 bytes, its version
 * is 1300 (stock PostgreSQL 13 to 16) or 1400 (the patched server), the
 * CRC-32C at the version's offset matches everything before it, and the
 * block sizes are the ones the format assumes.  Every change made here
 * (conversion, unloggedLSN) leaves every other byte as it was and
 * recomputes the CRC, so that the file stays what the server wrote except
 * for the field changed.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include "pct_internal.h"

/* ---- CRC-32C ---- */

/* Castagnoli polynomial, bit-reflected. */
#define CRC32C_POLY_REFLECTED 0x82F63B78u

/*
 * Slicing-by-8 tables: crc_table[0] is the classic byte-at-a-time table;
 * crc_table[k][b] is the CRC of byte b followed by k zero bytes, so eight
 * input bytes are folded with eight lookups.  Built once, on first use.
 */
static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void
build_crc_table(void)
{
	for (uint32_t b = 0; b < 256; b++)
	{
		uint32_t	c = b;

		for (int bit = 0; bit < 8; bit++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
		crc_table[0][b] = c;
	}
	for (uint32_t b = 0; b < 256; b++)
		for (int k = 1; k < 8; k++)
			crc_table[k][b] = (crc_table[k - 1][b] >> 8) ^
				crc_table[0][crc_table[k - 1][b] & 0xFF];
}

uint32_t
pct_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	(void) pthread_once(&crc_table_once, build_crc_table);

	/* Eight bytes at a time; loads are explicit little-endian. */
	while (len >= 8)
	{
		uint32_t	lo = crc ^ pct_get_u32(p);
		uint32_t	hi = pct_get_u32(p + 4);

		crc = crc_table[7][lo & 0xFF] ^
			crc_table[6][(lo >> 8) & 0xFF] ^
			crc_table[5][(lo >> 16) & 0xFF] ^
			crc_table[4][lo >> 24] ^
			crc_table[3][hi & 0xFF] ^
			crc_table[2][(hi >> 8) & 0xFF] ^
			crc_table[1][(hi >> 16) & 0xFF] ^
			crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return crc;
}

/* CRC-32C of the first len bytes, finalised as PostgreSQL stores it. */
static uint32_t
crc_of(const uint8_t *buf, size_t len)
{
	return PCT_CRC32C_FINAL(pct_crc32c(PCT_CRC32C_INIT, buf, len));
}

/* ---- checking ---- */

/* Offset of the CRC for a version, 0 for an unsupported version. */
static size_t
crc_offset(uint32_t version)
{
	if (version == PCT_CONTROL_VERSION_STOCK)
		return PCT_CTL_OFF_CRC_1300;
	if (version == PCT_CONTROL_VERSION_ENCRYPTED)
		return PCT_CTL_OFF_CRC_1400;
	return 0;
}

/* Store the CRC of everything before the version's CRC offset. */
static void
store_crc(uint8_t *raw, uint32_t version)
{
	size_t		off = crc_offset(version);

	pct_put_u32(raw + off, crc_of(raw, off));
}

/* xlog_seg_size must be a power of two from 1 MB to 1 GB (as the server's
 * IsValidWalSegSize()). */
static bool
valid_wal_seg_size(uint32_t size)
{
	return size >= 1024u * 1024u && size <= 1024u * 1024u * 1024u &&
		(size & (size - 1)) == 0;
}

/*
 * Check control data in buf; "what" names it in messages (a path, or
 * "pg_control" for data from memory).  On success, fill ctl when not NULL.
 */
static pct_rc
check_control(const uint8_t *buf, size_t len, const char *what,
			  pct_control *ctl)
{
	uint32_t	version,
				stored,
				computed,
				blcksz,
				xlog_blcksz,
				relseg_size,
				xlog_seg_size;
	size_t		off;

	if (len != PCT_CONTROL_FILE_SIZE)
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"control file \"%s\" has %zu bytes, expected %d",
						what, len, PCT_CONTROL_FILE_SIZE);

	version = pct_get_u32(buf + PCT_CTL_OFF_VERSION);
	off = crc_offset(version);
	if (off == 0)
	{
		char		detail[256];

		/* As pg_controldata: a version with only the high half set is
		 * most likely a byte-order mismatch. */
		if (version % 65536 == 0 && version / 65536 != 0)
			snprintf(detail, sizeof(detail),
					 "The version would be %u in the other byte order; the "
					 "file may come from a machine of different endianness.",
					 version / 65536);
		else
			snprintf(detail, sizeof(detail),
					 "Supported versions are %d (PostgreSQL 13 to 16) and %d "
					 "(cluster file encryption).",
					 PCT_CONTROL_VERSION_STOCK, PCT_CONTROL_VERSION_ENCRYPTED);
		return pct_fail(PCT_ERR_FORMAT, detail, NULL,
						"control file \"%s\" has unsupported version %u",
						what, version);
	}

	stored = pct_get_u32(buf + off);
	computed = crc_of(buf, off);
	if (stored != computed)
	{
		char		detail[128];

		snprintf(detail, sizeof(detail),
				 "Stored CRC 0x%08X, calculated 0x%08X (version %u, CRC at "
				 "offset %zu).", stored, computed, version, off);
		return pct_fail(PCT_ERR_FORMAT, detail, NULL,
						"calculated CRC checksum does not match value stored "
						"in control file \"%s\"", what);
	}

	blcksz = pct_get_u32(buf + PCT_CTL_OFF_BLCKSZ);
	xlog_blcksz = pct_get_u32(buf + PCT_CTL_OFF_XLOG_BLCKSZ);
	relseg_size = pct_get_u32(buf + PCT_CTL_OFF_RELSEG_SIZE);
	xlog_seg_size = pct_get_u32(buf + PCT_CTL_OFF_XLOG_SEG_SIZE);
	if (blcksz != PCT_BLCKSZ)
		return pct_fail(PCT_ERR_FORMAT, NULL,
						"Only clusters with a block size of 8192 bytes are "
						"supported.",
						"control file \"%s\" gives block size %u, which is "
						"not supported", what, blcksz);
	if (xlog_blcksz != PCT_XLOG_BLCKSZ)
		return pct_fail(PCT_ERR_FORMAT, NULL,
						"Only clusters with a WAL block size of 8192 bytes "
						"are supported.",
						"control file \"%s\" gives WAL block size %u, which "
						"is not supported", what, xlog_blcksz);
	if (relseg_size == 0)
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"control file \"%s\" gives invalid relation segment "
						"size 0", what);
	if (!valid_wal_seg_size(xlog_seg_size))
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"control file \"%s\" gives invalid WAL segment size "
						"%u", what, xlog_seg_size);

	if (ctl == NULL)
		return PCT_OK;
	memcpy(ctl->raw, buf, PCT_CONTROL_FILE_SIZE);
	ctl->version = version;
	ctl->system_identifier = pct_get_u64(buf + PCT_CTL_OFF_SYSID);
	ctl->catalog_version = pct_get_u32(buf + PCT_CTL_OFF_CATVERSION);
	ctl->state = (int32_t) pct_get_u32(buf + PCT_CTL_OFF_STATE);
	ctl->wal_level = (int32_t) pct_get_u32(buf + PCT_CTL_OFF_WAL_LEVEL);
	ctl->blcksz = blcksz;
	ctl->relseg_size = relseg_size;
	ctl->xlog_blcksz = xlog_blcksz;
	ctl->xlog_seg_size = xlog_seg_size;
	ctl->data_checksum_version =
		pct_get_u32(buf + PCT_CTL_OFF_CHECKSUM_VERSION);
	ctl->unlogged_lsn = pct_get_u64(buf + PCT_CTL_OFF_UNLOGGED_LSN);
	ctl->encryption = version == PCT_CONTROL_VERSION_ENCRYPTED ?
		pct_get_u32(buf + PCT_CTL_OFF_ENCRYPTION) : 0;
	return PCT_OK;
}

pct_rc
pct_control_parse(const uint8_t *buf, size_t len, pct_control *ctl)
{
	if (buf == NULL || ctl == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"pct_control_parse: null argument");
	return check_control(buf, len, "pg_control", ctl);
}

pct_rc
pct_control_read(const char *pgdata, pct_control *ctl)
{
	char		path[PCT_MAXPATH];
	uint8_t		buf[PCT_CONTROL_FILE_SIZE];
	size_t		len;
	pct_rc		rc;

	if (pgdata == NULL || ctl == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"pct_control_read: null argument");
	if ((rc = pct_path(path, "%s/%s", pgdata, PCT_CONTROL_FILE)) != PCT_OK)
		return rc;
	/* A file longer than 8192 bytes fails here, naming the limit. */
	if ((rc = pct_read_file(path, buf, sizeof(buf), &len)) != PCT_OK)
		return rc;
	return check_control(buf, len, path, ctl);
}

/* ---- changes in memory ---- */

/* The in-memory raw bytes must still be a valid control file of the
 * version recorded in ctl: a change must never launder a bad CRC. */
static pct_rc
check_raw(const pct_control *ctl, uint32_t want_version, const char *op)
{
	uint32_t	version = pct_get_u32(ctl->raw + PCT_CTL_OFF_VERSION);

	if (version != ctl->version)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"%s: control data says version %u, expected %u",
						op, version, ctl->version);
	if (want_version != 0 && version != want_version)
		return pct_fail(PCT_ERR_STATE, NULL, NULL,
						"cannot %s: pg_control has version %u, expected %u",
						op, version, want_version);
	return check_control(ctl->raw, sizeof(ctl->raw), "pg_control", NULL);
}

/* Values of file_encryption_method (generation 2) and
 * file_encryption_keylen in bits (generation 1). */
static bool
valid_encryption_field(uint32_t v)
{
	return v == PCT_METHOD_AES128 || v == PCT_METHOD_AES192 ||
		v == PCT_METHOD_AES256 || v == 128 || v == 192 || v == 256;
}

pct_rc
pct_control_to_1400(pct_control *ctl, uint32_t encryption)
{
	pct_rc		rc;

	if (ctl == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"pct_control_to_1400: null argument");
	if (!valid_encryption_field(encryption))
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"invalid encryption field value %u for pg_control",
						encryption);
	if ((rc = check_raw(ctl, PCT_CONTROL_VERSION_STOCK,
						"convert pg_control to version 1400")) != PCT_OK)
		return rc;
	/* Bytes 292..295 are padding in 1300; the 1400 CRC goes there. */
	for (size_t i = PCT_CTL_OFF_CRC_1400; i < PCT_CTL_OFF_CRC_1400 + 4; i++)
		if (ctl->raw[i] != 0)
			return pct_fail(PCT_ERR_FORMAT,
							"Bytes 292 to 295 of a version 1300 control file "
							"must be zero to make room for the CRC.", NULL,
							"cannot convert pg_control to version 1400: byte "
							"%zu is 0x%02X, not zero", i, ctl->raw[i]);

	pct_put_u32(ctl->raw + PCT_CTL_OFF_VERSION, PCT_CONTROL_VERSION_ENCRYPTED);
	pct_put_u32(ctl->raw + PCT_CTL_OFF_ENCRYPTION, encryption);
	store_crc(ctl->raw, PCT_CONTROL_VERSION_ENCRYPTED);
	ctl->version = PCT_CONTROL_VERSION_ENCRYPTED;
	ctl->encryption = encryption;
	return PCT_OK;
}

pct_rc
pct_control_to_1300(pct_control *ctl)
{
	pct_rc		rc;

	if (ctl == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"pct_control_to_1300: null argument");
	if ((rc = check_raw(ctl, PCT_CONTROL_VERSION_ENCRYPTED,
						"convert pg_control to version 1300")) != PCT_OK)
		return rc;

	pct_put_u32(ctl->raw + PCT_CTL_OFF_VERSION, PCT_CONTROL_VERSION_STOCK);
	/* The field and the 1400 CRC go; 292..295 become padding again. */
	memset(ctl->raw + PCT_CTL_OFF_ENCRYPTION, 0, 8);
	store_crc(ctl->raw, PCT_CONTROL_VERSION_STOCK);
	ctl->version = PCT_CONTROL_VERSION_STOCK;
	ctl->encryption = 0;
	return PCT_OK;
}

pct_rc
pct_control_set_unlogged_lsn(pct_control *ctl, uint64_t lsn)
{
	pct_rc		rc;

	if (ctl == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"pct_control_set_unlogged_lsn: null argument");
	if ((rc = check_raw(ctl, 0, "set unloggedLSN")) != PCT_OK)
		return rc;
	pct_put_u64(ctl->raw + PCT_CTL_OFF_UNLOGGED_LSN, lsn);
	store_crc(ctl->raw, ctl->version);
	ctl->unlogged_lsn = lsn;
	return PCT_OK;
}

/* ---- writing ---- */

pct_rc
pct_control_write(const char *pgdata, const pct_control *ctl)
{
	char		path[PCT_MAXPATH];
	struct stat st;
	pct_rc		rc;

	if (pgdata == NULL || ctl == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"pct_control_write: null argument");
	/* Never write control data the server would reject. */
	if ((rc = check_raw(ctl, 0, "write pg_control")) != PCT_OK)
		return rc;
	if ((rc = pct_path(path, "%s/%s", pgdata, PCT_CONTROL_FILE)) != PCT_OK)
		return rc;
	if (lstat(path, &st) != 0)
		return pct_syserr("could not stat file \"%s\"", path);
	if (!S_ISREG(st.st_mode))
		return pct_fail(PCT_ERR_STATE, NULL, NULL,
						"\"%s\" is not a regular file", path);
	rc = pct_durable_write(path, ctl->raw, sizeof(ctl->raw),
						   st.st_mode & 07777);
	if (rc != PCT_OK)
		return rc;
	pct_durable_step("write pg_control");
	return PCT_OK;
}

/* ---- texts and derived values ---- */

const char *
pct_dbstate_str(int32_t state)
{
	switch (state)
	{
		case PCT_DB_STARTUP:
			return "starting up";
		case PCT_DB_SHUTDOWNED:
			return "shut down";
		case PCT_DB_SHUTDOWNED_IN_RECOVERY:
			return "shut down in recovery";
		case PCT_DB_SHUTDOWNING:
			return "shutting down";
		case PCT_DB_IN_CRASH_RECOVERY:
			return "in crash recovery";
		case PCT_DB_IN_ARCHIVE_RECOVERY:
			return "in archive recovery";
		case PCT_DB_IN_PRODUCTION:
			return "in production";
	}
	return "unrecognized status code";
}

int
pct_control_keylen(const pct_control *ctl, int generation)
{
	if (ctl == NULL || ctl->version != PCT_CONTROL_VERSION_ENCRYPTED)
		return 0;
	if (generation == PCT_GEN2)
	{
		switch (ctl->encryption)
		{
			case PCT_METHOD_AES128:
				return 16;
			case PCT_METHOD_AES192:
				return 24;
			case PCT_METHOD_AES256:
				return 32;
		}
		return 0;
	}
	if (generation == PCT_GEN1)
	{
		switch (ctl->encryption)
		{
			case 128:
			case 192:
			case 256:
				return (int) ctl->encryption / 8;
		}
		return 0;
	}
	return 0;
}
