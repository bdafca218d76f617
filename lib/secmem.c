/*
 * secmem.c
 *	  Memory for secrets.
 *
 * Owns: locked, non-dumpable allocations for keys; wiping; constant-time
 * comparison; switching core dumps off while keys are loaded.  Live
 * allocations are registered so that pct_secure_wipe_all() can wipe them
 * on any exit path (the tools call it from atexit()).
 */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pct_internal.h"

#define MAX_SECRETS 64

static struct
{
	void	   *p;
	size_t		size;
}			secrets[MAX_SECRETS];
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;

static void
remember(void *p, size_t size)
{
	pthread_mutex_lock(&secrets_lock);
	for (int i = 0; i < MAX_SECRETS; i++)
		if (secrets[i].p == NULL)
		{
			secrets[i].p = p;
			secrets[i].size = size;
			break;
		}
	pthread_mutex_unlock(&secrets_lock);
}

static void
forget(void *p)
{
	pthread_mutex_lock(&secrets_lock);
	for (int i = 0; i < MAX_SECRETS; i++)
		if (secrets[i].p == p)
			secrets[i].p = NULL;
	pthread_mutex_unlock(&secrets_lock);
}

void
pct_secure_wipe_all(void)
{
	pthread_mutex_lock(&secrets_lock);
	for (int i = 0; i < MAX_SECRETS; i++)
		if (secrets[i].p != NULL)
			pct_wipe(secrets[i].p, secrets[i].size);
	pthread_mutex_unlock(&secrets_lock);
}

static size_t
round_to_pages(size_t len)
{
	long		page = sysconf(_SC_PAGESIZE);
	size_t		ps = page > 0 ? (size_t) page : 4096;

	return (len + ps - 1) / ps * ps;
}

void *
pct_secure_alloc(size_t len)
{
	size_t		size = round_to_pages(len ? len : 1);
	void	   *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	if (p == MAP_FAILED)
	{
		pct_syserr("could not allocate memory for keys");
		return NULL;
	}
	/* Keep it out of core dumps and swap; mlock may fail under a low
	 * RLIMIT_MEMLOCK, which is not fatal (core dumps are off anyway). */
	(void) madvise(p, size, MADV_DONTDUMP);
	if (mlock(p, size) != 0)
		pct_report(PCT_LOG_DEBUG, NULL, NULL,
				   "could not lock key memory: %s", strerror(errno));
	remember(p, size);
	return p;
}

void
pct_secure_free(void *p, size_t len)
{
	size_t		size;

	if (p == NULL)
		return;
	size = round_to_pages(len ? len : 1);
	forget(p);
	pct_wipe(p, size);
	(void) munlock(p, size);
	(void) munmap(p, size);
}

void
pct_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

bool
pct_ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

pct_rc
pct_disable_core_dumps(void)
{
	struct rlimit rl = {0, 0};

	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		return pct_syserr("could not disable core dumps");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return pct_syserr("could not disable core dumps");
	return PCT_OK;
}
