/* clamd.c - being written */
