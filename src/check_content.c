/* placeholder */
#include "check.h"
const struct check_ops check_content = { .name = "content", .group = "content" };
