/* placeholder */
#include "check.h"
const struct check_ops check_antivirus = { .name = "antivirus", .group = "antivirus" };
