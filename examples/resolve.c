/* resolve.c — resolve a name with libaisid (C API) and say where the answer
 * came from. Build against an installed aisid:
 *   cc resolve.c $(pkg-config --cflags --libs aisid) -o aisid-resolve
 * usage: aisid-resolve [--zone FILE]... [--upstream ADDR[:PORT],...] NAME
 */
#include <aisid/aisid.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *name = NULL;
    aisid_client_t *c = NULL;
    int zones = 0;
    for (int i = 1; i < argc; ++i)
        if (strcmp(argv[i], "--zone") == 0) zones = 1;
    /* Named zone files only, when any are given; otherwise the host's. */
    aisid_status_t st = aisid_client_new_flags(&c, zones ? AISID_CLIENT_NO_HOST_ZONES | AISID_CLIENT_NO_WATCH
                                                         : AISID_CLIENT_NO_WATCH);
    if (st != AISID_OK) {
        fprintf(stderr, "aisid-resolve: %s\n", aisid_strerror(st));
        return 3;
    }
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--zone") == 0 && i + 1 < argc) {
            if ((st = aisid_client_add_zone_file(c, argv[++i])) != AISID_OK) {
                fprintf(stderr, "aisid-resolve: %s\n", aisid_last_error());
                aisid_client_free(c);
                return 2;
            }
        } else if (strcmp(argv[i], "--upstream") == 0 && i + 1 < argc) {
            if (aisid_client_set_upstreams(c, argv[++i]) != AISID_OK) {
                fprintf(stderr, "aisid-resolve: bad upstream list\n");
                aisid_client_free(c);
                return 2;
            }
        } else {
            name = argv[i];
        }
    }
    if (!name) {
        fprintf(stderr, "usage: aisid-resolve [--zone FILE]... [--upstream ADDR[:PORT],...] NAME\n");
        aisid_client_free(c);
        return 2;
    }

    aisid_result_t *r = NULL;
    st = aisid_resolve(c, name, &r);
    if (st != AISID_OK) {
        fprintf(stderr, "aisid-resolve: %s: %s\n", name, aisid_strerror(st));
        aisid_client_free(c);
        return st == AISID_ENOTFOUND || st == AISID_ENODATA ? 1 : 3;
    }
    printf("%s source=%s\n", aisid_result_name(r), aisid_result_is_aisid(r) ? "aisid" : "legacy");
    for (size_t i = 0; i < aisid_result_count(r); ++i) {
        struct in6_addr a;
        char buf[INET6_ADDRSTRLEN];
        aisid_result_address(r, i, &a);
        printf("address %s\n", inet_ntop(AF_INET6, &a, buf, sizeof buf));
    }
    aisid_fields_t f;
    if (aisid_result_fields(r, &f) == 0) {
        const char *o = aisid_result_term(r, AISID_DIM_OBJECT), *fn = aisid_result_term(r, AISID_DIM_FUNCTION),
                   *m = aisid_result_term(r, AISID_DIM_METHOD);
        printf("object %u (%s) function %u (%s) method %u (%s) performance %u\n", f.object, o ? o : "any",
               f.function, fn ? fn : "any", f.method, m ? m : "any", f.performance);
    }
    for (size_t i = 0; i < aisid_result_fallback_count(r); ++i) {
        const char *t;
        uint16_t port;
        aisid_result_fallback(r, i, &t, &port);
        printf("fallback %s port %u\n", t, port);
    }
    aisid_result_free(r);
    aisid_client_free(c);
    return 0;
}
