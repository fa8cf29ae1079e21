/*
 * ctl.c - portero-ctl (placeholder)
 */
int main(void);
int
main(void)
{
	return 2;
}
