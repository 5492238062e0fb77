/* domain_keys.c — a domain's active DKIM keys as domain_dns_new takes them, read from the key store
 * (keys/dkim_store.h) for `mailwerk dns records`/`dns check` and the API's /domains alike. */
#include "domains/domain_dns.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "keys/dkim_store.h"

/* dkim_store_list's pkey lives only during the callback: each kept one is referenced */
static void domain_key_collect(const struct dkim_store_key *k, void *arg)
{
	struct domain_keys *ks = arg;
	if (!k->active || ks->n == DOMAIN_KEYS_MAX || EVP_PKEY_up_ref(k->pkey) != 1)
		return;
	snprintf(ks->selectors[ks->n], sizeof(ks->selectors[0]), "%s", k->selector);
	ks->k[ks->n] = (struct domain_dns_key){
		.selector = ks->selectors[ks->n], .pkey = k->pkey, .type = k->type, .bits = k->bits,
	};
	ks->n++;
}

int domain_keys_load(const char *data_dir, const char *domain, struct domain_keys *ks, char *err, size_t err_size)
{
	memset(ks, 0, sizeof(*ks));
	return dkim_store_list(data_dir, domain, domain_key_collect, NULL, ks, err, err_size);
}

void domain_keys_clear(struct domain_keys *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		EVP_PKEY_free((EVP_PKEY *)ks->k[i].pkey);
	ks->n = 0;
}
