/* scanproto.c - being written */
