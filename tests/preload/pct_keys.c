/*
 * pct_keys.c
 *	  Which processes the test preload acts in, and its activation: the
 *	  keys of an encrypted cluster, obtained as the patched server does.
 *
 * Owns: pp_state, the cluster facts and ciphers of the data path (pp_cl),
 * the state shared by the processes of one server, and messages.
 *
 * Theory of operation:
 *	1. Every process that loads the library (LD_PRELOAD is inherited by
 *	   everything pg_ctl starts: the postmaster and its children, but also
 *	   archive and restore commands, the key command's shell...) decides
 *	   once, in the constructor, whether it is a PostgreSQL server:
 *	   /proc/self/exe is named postgres (or postmaster) and the process has
 *	   the server's exported globals (MyBackendType, DataDir...).  Any
 *	   other process has PP_OFF and every interposed call goes straight to
 *	   libc.
 *	2. In a server, the first open() of a data file (the postmaster's
 *	   read of global/pg_control, after the configuration is loaded and
 *	   before any other data file is touched) activates the library.
 *	   pg_control version 1300 (or none yet, as under initdb): a plain
 *	   cluster, PP_PLAIN, nothing is transformed, unless pg_cryptokeys
 *	   exists (refused: see 3).  Version 1400:
 *	3. Refuse to start (a FATAL message on stderr, then proc_exit(1) as the
 *	   server leaves on FATAL errors) when pg_control is 1300 (without
 *	   the base backup mark) but pg_cryptokeys exists, when
 *	   pg_cryptokeys/pg_alterckey.pid,
 *	   new/ or old/ exists, when live/ is missing or fails the checks of
 *	   FORMAT 1.4, for generation 1 key files (that server never encrypted
 *	   data), when cluster_key_command is not set or fails, and when the
 *	   keys do not unwrap or their length disagrees with pg_control.
 *	4. Run cluster_key_command (the value the server parsed, see
 *	   pct_pgserver.c; the library's configuration reader when the setting
 *	   could not be defined) with %d the absolute path of live/; unwrap
 *	   both keys into secure memory, make one AES-CTR cipher per key, wipe
 *	   and free the KEK and the keys.  The ciphers (OpenSSL EVP contexts
 *	   holding the key schedules) are inherited by every process the
 *	   postmaster forks: no process loads keys again.
 *	5. Map the shared state (anonymous, MAP_SHARED) so that the children
 *	   share it, turn core dumps off (RLIMIT_CORE) and set PP_ACTIVE.
 * The library's own I/O during activation goes straight to libc
 * (pp_busy).  Messages go to stderr, which is the server log.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/pct_internal.h"
#include "pct_preload.h"

pp_mode		pp_state = PP_OFF;
int			pp_busy;
pp_cluster	pp_cl;

/* ---- messages ---- */

static void
log_va(const char *level, const char *fmt, va_list ap)
{
	char		buf[2048];
	int			n,
				m;

	n = snprintf(buf, sizeof(buf), "pct_preload[%d]: %s:  ", (int) getpid(),
				 level);
	if (n < 0 || (size_t) n >= sizeof(buf))
		return;
	m = vsnprintf(buf + n, sizeof(buf) - (size_t) n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t) n > sizeof(buf) - 2)
		n = (int) sizeof(buf) - 2;
	buf[n++] = '\n';
	/* fd 2 is never a tracked file: this goes straight to libc */
	(void) !write(STDERR_FILENO, buf, (size_t) n);
}

void
pp_log(const char *level, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_va(level, fmt, ap);
	va_end(ap);
}

void
pp_die(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_va("PANIC", fmt, ap);
	va_end(ap);
	pp_log("DETAIL", "the pgcrypttools test preload stops this process rather than let plaintext reach an encrypted file or ciphertext reach the server");
	abort();
}

/* Messages of libpgcrypttools during activation. */
static void
lib_log(void *arg, pct_level level, const char *msg, const char *detail,
		const char *hint)
{
	(void) arg;
	if (level == PCT_LOG_DEBUG)
		return;
	pp_log(level == PCT_LOG_ERROR ? "ERROR" :
		   level == PCT_LOG_WARNING ? "WARNING" : "LOG", "%s", msg);
	if (detail != NULL)
		pp_log("DETAIL", "%s", detail);
	if (hint != NULL)
		pp_log("HINT", "%s", hint);
}

/* Refuse to start: a FATAL message (and an optional hint), then leave. */
__attribute__((format(printf, 2, 3), noreturn))
static void
refuse(const char *hint, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	log_va("FATAL", fmt, ap);
	va_end(ap);
	if (hint != NULL)
		pp_log("HINT", "%s", hint);
	pp_server_exit(1);
}

uint32_t
pp_backup_mark(const uint8_t *control)
{
	uint32_t	v = pct_get_u32(control + PCT_CTL_OFF_CRC_1400);
	uint32_t	method = v & 0xFF;

	if ((v & ~0xFFu) != PP_BACKUP_MARK(0) || method < PCT_METHOD_AES128 ||
		method > PCT_METHOD_AES256)
		return 0;
	return method;
}

/* ---- 1. which process ---- */

void
pp_detect_server(void)
{
	char		exe[PATH_MAX];
	const char *base;
	ssize_t		n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = '\0';
	base = strrchr(exe, '/');
	base = base != NULL ? base + 1 : exe;
	if (strcmp(base, "postgres") != 0 && strcmp(base, "postmaster") != 0)
		return;
	if (!pp_server_resolve())
		return;
	pp_state = PP_SERVER;
}

/* ---- 2..5. activation ---- */

static void
finding(void *arg, const char *path, const char *what)
{
	(void) arg;
	pp_log("ERROR", "key file check failed for \"%s\": %s", path, what);
}

/* The lock and the leftover directories of FORMAT 1. */
static void
check_keydir_state(const char *pgdata, char *livedir)
{
	const char *retry = "Finish or repair the interrupted operation first: pg_alterckey -r for a cluster key change, the same pg_encrypt_cluster command for an encryption.";
	pct_lock_status st;
	unsigned	state;
	bool		exists;
	pid_t		pid;

	if (pct_lock_inspect(pgdata, &st, &pid) != PCT_OK)
		refuse(NULL, "could not inspect the lock file of \"%s/%s\"",
			   pgdata, PCT_KEYDIR);
	if (st != PCT_LOCK_FREE)
		refuse(retry,
			   "cannot start on an encrypted cluster while \"%s/%s/%s\" exists (%s process %d)",
			   pgdata, PCT_KEYDIR, PCT_LOCK_FILE,
			   st == PCT_LOCK_HELD ? "held by" : "left by the exited",
			   (int) pid);
	if (pct_keydir_state(pgdata, &state, &exists) != PCT_OK)
		refuse(NULL, "could not inspect the key directory \"%s/%s\"",
			   pgdata, PCT_KEYDIR);
	if (!exists || !(state & PCT_KD_LIVE))
		refuse(NULL, "cluster is encrypted (pg_control version %d) but \"%s/%s/%s\" does not exist",
			   PCT_CONTROL_VERSION_ENCRYPTED, pgdata, PCT_KEYDIR,
			   PCT_KEYDIR_LIVE);
	if (state & (PCT_KD_NEW | PCT_KD_OLD))
		refuse(retry,
			   "cannot start on an encrypted cluster while the key directory \"%s/%s\" is in state \"%s\" (an interrupted cluster key change)",
			   pgdata, PCT_KEYDIR, pct_keydir_state_str(state));
	if (pct_path(livedir, "%s/%s/%s", pgdata, PCT_KEYDIR,
				 PCT_KEYDIR_LIVE) != PCT_OK)
		refuse(NULL, "data directory path too long");
}

/* Run cluster_key_command and unwrap live/ into ks. */
static void
load_keys(const char *pgdata, const char *livedir, uid_t owner, int keylen,
		  pct_keyset *ks)
{
	const char *cmd = pp_server_key_command();
	char	   *from_file = NULL;
	uint8_t    *kek;
	pct_keycmd	kc;

	if (cmd == NULL)
	{
		char	   *file = NULL;
		int			line;

		if (pct_config_get(pgdata, "cluster_key_command", &from_file, &file,
						   &line) != PCT_OK)
			refuse(NULL, "could not read the configuration of \"%s\"", pgdata);
		free(file);
		cmd = from_file;
	}
	if (cmd == NULL || cmd[0] == '\0')
		refuse("Set it to the command given to pg_encrypt_cluster -c.",
			   "cannot start on an encrypted cluster: cluster_key_command is not set");
	kek = pct_secure_alloc(PCT_KEK_LEN);
	if (kek == NULL)
		refuse(NULL, "out of memory for the cluster key");
	memset(&kc, 0, sizeof(kc));
	kc.command = cmd;
	kc.keydir = livedir;
	kc.terminal_fd = -1;
	if (pct_keycmd_run(&kc, kek) != PCT_OK)
		refuse(NULL, "could not obtain the cluster key from cluster_key_command");
	if (pct_keydir_read(livedir, owner, kek, keylen, ks) != PCT_OK)
		refuse("Check that cluster_key_command prints this cluster's key and that pg_control and the key files belong together.",
			   "could not unwrap the data keys in \"%s\"", livedir);
	pct_secure_free(kek, PCT_KEK_LEN);
	free(from_file);
}

void
pp_activate(void)
{
	static pct_control ctl;
	char		cwd[PCT_MAXPATH];
	char		livedir[PCT_MAXPATH];
	char		path[PCT_MAXPATH];
	const char *pgdata;
	pct_keyset *ks;
	struct stat st;
	struct rlimit rl = {0, 0};
	int			major,
				gen = 0,
				problems = 0,
				keylen;
	uid_t		owner;

	pp_busy++;
	pct_set_log(lib_log, NULL);
	pgdata = pp_server_datadir();
	if (pgdata == NULL)
	{
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			refuse(NULL, "could not find the data directory");
		pgdata = cwd;
	}

	/* 2. encrypted or not */
	if (pct_path(path, "%s/%s", pgdata, PCT_CONTROL_FILE) != PCT_OK ||
		stat(path, &st) != 0 ||
		pct_control_read(pgdata, &ctl) != PCT_OK)
	{
		/* no pg_control yet (initdb), or one the server will judge */
		pp_state = PP_PLAIN;
		pp_busy--;
		return;
	}
	if (ctl.version == PCT_CONTROL_VERSION_STOCK && pp_backup_mark(ctl.raw))
	{
		/* a base backup of an encrypted cluster, taken through the
		 * preload: its first pg_control write makes it 1400 again */
		ctl.encryption = pp_backup_mark(ctl.raw);
		ctl.version = PCT_CONTROL_VERSION_ENCRYPTED;	/* as it will be */
		pp_log("LOG", "pg_control holds the mark of a base backup of an encrypted cluster (method %u)",
			   (unsigned) ctl.encryption);
	}
	else if (ctl.version != PCT_CONTROL_VERSION_ENCRYPTED)
	{
		/*
		 * A plain cluster has no key directory (decryption removes it).
		 * With one, pg_control lost its encrypted state (or an encryption
		 * stopped before converting it): the files may hold ciphertext,
		 * and running on them as plain would serve it as data.
		 */
		if (pct_path(path, "%s/%s", pgdata, PCT_KEYDIR) == PCT_OK &&
			lstat(path, &st) == 0)
			refuse("Finish or undo the operation that left it, or restore pg_control.",
				   "pg_control is version %u (not encrypted) but \"%s\" exists",
				   (unsigned) ctl.version, path);
		/* a plain cluster */
		pp_state = PP_PLAIN;
		pp_busy--;
		return;
	}

	/* 3. the state of the key directory */
	check_keydir_state(pgdata, livedir);
	/* the cluster owner owns the key files (FORMAT 1.4); the server has
	 * checked PG_VERSION against its own major version */
	if (stat(pgdata, &st) != 0)
		refuse(NULL, "could not stat \"%s\": %s", pgdata, strerror(errno));
	owner = st.st_uid;
	major = pp_server_major();
	if (pct_wal_magic(major) == 0)
		refuse(NULL, "unsupported PostgreSQL major version %d", major);
	if (pct_keydir_check(livedir, owner, &gen, finding, NULL,
						 &problems) != PCT_OK || problems > 0)
		refuse(NULL, "the key files in \"%s\" failed their checks", livedir);
	if (gen != PCT_GEN2)
		refuse("The preload emulates the generation 2 server, which encrypts relation pages and WAL.",
			   "cannot start on a cluster with generation %d key files", gen);
	keylen = pct_control_keylen(&ctl, gen);
	if (keylen == 0)
		refuse(NULL, "pg_control holds an invalid file_encryption_method %u",
			   (unsigned) ctl.encryption);

	/* 4. the keys */
	ks = pct_secure_alloc(sizeof(*ks));
	if (ks == NULL)
		refuse(NULL, "out of memory for the data keys");
	load_keys(pgdata, livedir, owner, keylen, ks);
	if (pct_cipher_new(PCT_DATAKEY_BYTES(&ks->key[PCT_KEY_RELATION]),
					   ks->keylen, &pp_cl.rel) != PCT_OK ||
		pct_cipher_new(PCT_DATAKEY_BYTES(&ks->key[PCT_KEY_WAL]),
					   ks->keylen, &pp_cl.wal) != PCT_OK)
		refuse(NULL, "could not set up the AES-CTR ciphers");
	pct_secure_free(ks, sizeof(*ks));

	pp_cl.relseg_size = ctl.relseg_size;
	pp_cl.xlog_seg_size = ctl.xlog_seg_size;
	pp_cl.method = ctl.encryption;
	pp_cl.checksums = ctl.data_checksum_version != 0;
	pp_cl.wal_magic = pct_wal_magic(major);
	snprintf(pp_cl.tsdir, sizeof(pp_cl.tsdir), "PG_%d_%u", major,
			 (unsigned) ctl.catalog_version);

	/* 5. shared state, core dumps */
	pp_cl.shared = mmap(NULL, sizeof(pp_shared), PROT_READ | PROT_WRITE,
						MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pp_cl.shared == MAP_FAILED)
		refuse(NULL, "could not map shared memory: %s", strerror(errno));
	memset(pp_cl.shared, 0, sizeof(pp_shared));
	atomic_store(&pp_cl.shared->gen, 1);
	(void) setrlimit(RLIMIT_CORE, &rl);

	pp_log("LOG", "encrypted cluster (AES-%d, data checksums %s): relation pages and WAL are encrypted on the way to disk",
		   keylen * 8, pp_cl.checksums ? "on" : "off");
	pp_state = PP_ACTIVE;
	pp_busy--;
}
