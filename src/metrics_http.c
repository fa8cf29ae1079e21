/*
 * metrics_http.c - serves the metrics registry on GET /metrics with
 * libmicrohttpd (its own thread; the registry is thread-safe).  Only
 * GET /metrics is answered; anything else gets 404.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"
#include "metrics.h"
#include "util.h"

static struct MHD_Daemon	*daemon_h;

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **con_cls)
{
	struct MHD_Response	*resp;
	struct buf		 b;
	enum MHD_Result		 ret;
	unsigned		 status = MHD_HTTP_OK;

	(void)cls;
	(void)version;
	(void)upload;
	(void)upload_len;
	(void)con_cls;
	buf_init(&b, 4u << 20);
	if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0) {
		status = MHD_HTTP_NOT_FOUND;
		(void)buf_puts(&b, "not found\n");
	} else if (metrics_render(&b) != RC_OK) {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		buf_reset(&b);
		(void)buf_puts(&b, "error\n");
	}
	resp = MHD_create_response_from_buffer(b.len, b.data != NULL ?
	    b.data : (char *)"", MHD_RESPMEM_MUST_COPY);
	buf_free(&b);
	if (resp == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(resp, "Content-Type",
	    "text/plain; version=0.0.4");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* "127.0.0.1:9187", "[::1]:9187" or ":9187" (all addresses). */
int
metrics_listen_parse(const char *s, struct sockaddr_storage *ss,
    struct err *e)
{
	const char		*colon = strrchr(s, ':');
	unsigned long long	 port;
	char			 host[64];
	struct ipaddr		 ip;
	size_t			 hl;

	if (colon == NULL || parse_uint(colon + 1, 1, 65535, &port) != RC_OK)
		goto bad;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		goto bad;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (hl == 0) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	if (ipaddr_parse(host, &ip) != RC_OK)
		goto bad;
	if (ip.v4 && strchr(host, ':') == NULL) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ip.b + 12, 4);
		sin->sin_port = htons((uint16_t)port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ip.b, 16);
		sin6->sin6_port = htons((uint16_t)port);
	}
	return 0;
bad:
	err_set(e, "metrics.listen '%s' is not host:port", s);
	return -1;
}

int
metrics_http_start(const char *listen, struct err *e)
{
	struct sockaddr_storage	 ss;
	unsigned		 flags = MHD_USE_INTERNAL_POLLING_THREAD |
				    MHD_USE_ERROR_LOG;

	if (listen == NULL || *listen == '\0')
		return 0;
	if (metrics_listen_parse(listen, &ss, e) != 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	daemon_h = MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, 16u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10u,
	    MHD_OPTION_END);
	if (daemon_h == NULL) {
		err_set(e, "cannot serve metrics on %s", listen);
		return -1;
	}
	return 0;
}

void
metrics_http_stop(void)
{
	if (daemon_h != NULL)
		MHD_stop_daemon(daemon_h);
	daemon_h = NULL;
}
