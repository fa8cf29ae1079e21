/* ruletable.c - being written */
