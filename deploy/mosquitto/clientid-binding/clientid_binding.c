/*
 * clientid_binding: a Mosquitto 2.0 plugin (plugin API v5) that binds every MQTT client id to
 * the Common Name of the client's TLS certificate.
 *
 * Mosquitto keys sessions on the client id alone: whoever connects with an id that is already
 * connected takes the session over (the old connection is closed, and a clean start discards
 * its queued messages). With client certificates the CN is the identity, so this plugin lets
 * a certificate use only the ids that identity owns:
 *
 *     <CN>             e.g. gw1, edge-anodizing
 *     <CN>:<suffix>    e.g. gw1:agent, edge-anodizing:cmd-1a2b3c4d, fleet:123456789
 *
 * Identities never contain ':' (factory_common/wire.py check_id), so no identity's ids can be
 * another identity's. Everything else is refused with CONNACK "not authorised" before Mosquitto
 * looks the id up, so a refused client never touches an existing session.
 *
 * On success the plugin sets the username to the CN, whatever username the client sent, so
 * the ACL file's %u patterns and `user` entries apply to the certificate's identity.
 *
 * Needs `require_certificate true` and no `use_identity_as_username` / `use_subject_as_username`
 * on the listener: with either of those Mosquitto skips basic authentication, and so this
 * plugin, entirely.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define SEPARATOR ':'

static mosquitto_plugin_id_t *plugin_id;

/* The certificate's one Common Name as a NUL-terminated UTF-8 string (free with
 * OPENSSL_free), or NULL when it has none, several, an empty one, one with an embedded NUL, or
 * one containing the separator (which would let it own another identity's ids). */
static char *common_name(X509 *cert)
{
	X509_NAME *subject = X509_get_subject_name(cert);
	if (!subject) {
		return NULL;
	}
	int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	if (index < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0) {
		return NULL;
	}
	ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
	unsigned char *utf8 = NULL;
	int length = data ? ASN1_STRING_to_UTF8(&utf8, data) : -1;
	if (length <= 0) {
		OPENSSL_free(utf8);
		return NULL;
	}
	if ((size_t)length != strlen((char *)utf8) || strchr((char *)utf8, SEPARATOR)) {
		OPENSSL_free(utf8);
		return NULL;
	}
	return (char *)utf8;
}

/* True when `id` is `cn` itself or `cn`, the separator and a non-empty suffix. */
static bool id_belongs_to(const char *id, const char *cn)
{
	size_t n = strlen(cn);
	if (strncmp(id, cn, n) != 0) {
		return false;
	}
	return id[n] == '\0' || (id[n] == SEPARATOR && id[n + 1] != '\0');
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)userdata;
	struct mosquitto_evt_basic_auth *auth = event_data;
	const char *id = mosquitto_client_id(auth->client);
	const char *address = mosquitto_client_address(auth->client);
	/* Returns a new reference (SSL_get_peer_certificate): freed below. */
	X509 *cert = mosquitto_client_certificate(auth->client);
	if (!cert) {
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
			"clientid-binding: refused client id '%s' from %s: no client certificate",
			id ? id : "", address ? address : "?");
		return MOSQ_ERR_AUTH;
	}
	char *cn = common_name(cert);
	X509_free(cert);
	if (!cn) {
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
			"clientid-binding: refused client id '%s' from %s: the certificate has no usable "
			"Common Name (exactly one, non-empty, without '%c')",
			id ? id : "", address ? address : "?", SEPARATOR);
		return MOSQ_ERR_AUTH;
	}
	int rc;
	if (!id || !id_belongs_to(id, cn)) {
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
			"clientid-binding: refused client id '%s' from %s: certificate '%s' may use only "
			"'%s' or '%s%c<suffix>'",
			id ? id : "", address ? address : "?", cn, cn, cn, SEPARATOR);
		rc = MOSQ_ERR_AUTH;
	} else {
		/* The identity is the certificate's, not whatever username the client claimed. */
		rc = mosquitto_set_username(auth->client, cn);
		if (rc != MOSQ_ERR_SUCCESS) {
			mosquitto_log_printf(MOSQ_LOG_ERR,
				"clientid-binding: could not set username '%s' for client id '%s' (error %d)",
				cn, id, rc);
			rc = MOSQ_ERR_AUTH;
		}
	}
	OPENSSL_free(cn);
	return rc;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++) {
		if (supported_versions[i] == 5) {
			return 5;
		}
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
	struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	plugin_id = identifier;
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
}
