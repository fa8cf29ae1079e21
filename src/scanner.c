/* scanner.c - being written */
