/*
 * ctl.h - portero-ctl's command families kept out of ctl.c.
 */
#ifndef PORTERO_CTL_H
#define PORTERO_CTL_H

/* ctl_store.c: "greylist ..." and "callout ..." (what names the family;
 * argv holds the words after it).  Exit status. */
int	ctl_store_main(const char *cfgpath, const char *what, int argc,
	    char **argv);

/* ctl_dkim.c: "dkim keygen ..." and "dkim check ..." (argv holds the
 * words after "dkim").  Exit status. */
int	ctl_dkim_main(const char *cfgpath, int argc, char **argv);

#endif
