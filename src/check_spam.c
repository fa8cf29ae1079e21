/* placeholder */
#include "check.h"
const struct check_ops check_spam = { .name = "spam", .group = "spam" };
