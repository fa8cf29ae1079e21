/* mime.c - being written */
