/* version.h - the release version. */
#define PORTERO_VERSION "0.1.0"
