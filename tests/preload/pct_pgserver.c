/*
 * pct_pgserver.c
 *	  What the test preload needs from the PostgreSQL server it runs in.
 *
 * Owns: the server's exported globals (found with dlsym(), never linked
 * against, so that the library also loads into pg_ctl, psql, a shell...),
 * the process role they tell, and the cluster_key_command setting.  This
 * is the only unit compiled with PostgreSQL's server headers; it uses them
 * for types, enum values and layout facts only (the static assertions
 * below check the ones the data path relies on).
 *
 * Rules of this unit: postgres.h comes first, as in server code.  Its
 * port.h redirects the printf and strerror families to functions of the
 * server that other programs lack, so nothing here calls them; server
 * functions are only called through pointers found at run time.
 *
 * cluster_key_command: a stock server refuses a configuration file that
 * sets a parameter it does not know, and names without a dot cannot be
 * placeholders.  So when the server opens its main configuration file
 * (fopen() of ConfigFileName, after the GUC machinery is initialised and
 * before the file is parsed), the setting is defined as a custom string
 * variable (PGC_SIGHUP, superuser only), as the patched server has it.
 * The server then parses, reloads and shows it, and the preload reads the
 * value the server parsed, exactly the command the patched server would
 * run.  Processes forked later inherit the definition.
 */
#include "postgres.h"

#include <dlfcn.h>
#include <unistd.h>

#include "access/xlog_internal.h"
#include "catalog/pg_control.h"
#include "miscadmin.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "pg_cryptokeys.h"
#include "pct_pgserver.h"

/* The facts of FORMAT.md the data path relies on, against this server. */
StaticAssertDecl(BLCKSZ == PCT_BLCKSZ, "BLCKSZ differs from PCT_BLCKSZ");
StaticAssertDecl(XLOG_BLCKSZ == PCT_XLOG_BLCKSZ,
				 "XLOG_BLCKSZ differs from PCT_XLOG_BLCKSZ");
StaticAssertDecl(XLOG_PAGE_MAGIC == PCT_WAL_MAGIC_PG15,
				 "the preload is built for PostgreSQL 15 WAL pages");
StaticAssertDecl(PG_CONTROL_VERSION == PCT_CONTROL_VERSION_STOCK,
				 "the server's pg_control is not the stock 1300 layout");
StaticAssertDecl(offsetof(ControlFileData, crc) == PCT_CTL_OFF_CRC_1300,
				 "pg_control CRC offset");
StaticAssertDecl(sizeof(ControlFileData) <= PCT_CTL_OFF_CRC_1400 + 4,
				 "ControlFileData grew past the 1400 layout");

/* The server's globals and functions (NULL in other programs). */
static __typeof__(&MyBackendType) p_MyBackendType;
static __typeof__(&am_walsender) p_am_walsender;
static __typeof__(&am_db_walsender) p_am_db_walsender;
static __typeof__(&DataDir) p_DataDir;
static __typeof__(&ConfigFileName) p_ConfigFileName;
static char **p_BufferBlocks;	/* storage/bufmgr.h: char *BufferBlocks */
static int *p_NBuffers;			/* miscadmin.h: int NBuffers */
static __typeof__(&DefineCustomStringVariable) p_DefineCustomStringVariable;
static __typeof__(&proc_exit) p_proc_exit;

/* cluster_key_command, as the server parsed it. */
static char *key_command_value;
static bool key_command_defined;

bool
pp_server_resolve(void)
{
	p_MyBackendType = dlsym(RTLD_DEFAULT, "MyBackendType");
	p_am_walsender = dlsym(RTLD_DEFAULT, "am_walsender");
	p_am_db_walsender = dlsym(RTLD_DEFAULT, "am_db_walsender");
	p_DataDir = dlsym(RTLD_DEFAULT, "DataDir");
	p_ConfigFileName = dlsym(RTLD_DEFAULT, "ConfigFileName");
	p_BufferBlocks = dlsym(RTLD_DEFAULT, "BufferBlocks");
	p_NBuffers = dlsym(RTLD_DEFAULT, "NBuffers");
	p_DefineCustomStringVariable = dlsym(RTLD_DEFAULT,
										 "DefineCustomStringVariable");
	p_proc_exit = dlsym(RTLD_DEFAULT, "proc_exit");
	return p_MyBackendType != NULL && p_am_walsender != NULL &&
		p_am_db_walsender != NULL && p_DataDir != NULL &&
		p_BufferBlocks != NULL && p_NBuffers != NULL;
}

int
pp_server_major(void)
{
	return PG_VERSION_NUM / 10000;
}

const char *
pp_server_datadir(void)
{
	return p_DataDir != NULL ? *p_DataDir : NULL;
}

bool
pp_server_phys_walsender(void)
{
	return *p_am_walsender && !*p_am_db_walsender;
}

bool
pp_server_db_walsender(void)
{
	return *p_am_db_walsender;
}

bool
pp_server_walreceiver(void)
{
	return *p_MyBackendType == B_WAL_RECEIVER;
}

bool
pp_server_in_shared_buffers(const void *p, size_t len)
{
	uintptr_t	blocks = (uintptr_t) *p_BufferBlocks;
	uintptr_t	a = (uintptr_t) p;

	if (blocks == 0)
		return false;
	return a >= blocks &&
		a + len <= blocks + (uintptr_t) *p_NBuffers * (uintptr_t) BLCKSZ;
}

void
pp_server_config_opened(const char *path)
{
	if (key_command_defined || p_ConfigFileName == NULL ||
		*p_ConfigFileName == NULL || p_DefineCustomStringVariable == NULL ||
		strcmp(path, *p_ConfigFileName) != 0)
		return;
	key_command_defined = true;
	p_DefineCustomStringVariable("cluster_key_command",
								 "Command that prints the cluster key (emulated by the pgcrypttools test preload).",
								 NULL, &key_command_value, "", PGC_SIGHUP,
								 GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
}

const char *
pp_server_key_command(void)
{
	if (!key_command_defined)
		return NULL;
	return key_command_value != NULL ? key_command_value : "";
}

void
pp_server_exit(int code)
{
	if (p_proc_exit != NULL)
		p_proc_exit(code);
	_exit(code);
}
