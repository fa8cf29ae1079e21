#!/usr/bin/perl
# tests/data/geoip/make-mmdb.pl - writes a GeoIP2-Country-shaped (or, with
# --city, GeoIP2-City-shaped) MaxMind DB for the tests, from documentation
# address ranges, so no binary database is ever committed.
#
#   make-mmdb.pl [--city] OUT.mmdb [CIDR=CC | CIDR=@CC | CIDR= ]...
#
# Default networks:
#   203.0.113.0/24  RO        198.51.100.0/24  CN
#   192.0.2.0/24    DE        2001:db8::/32    US
#   198.18.0.0/15   @NL  (registered_country only, no country record)
# Each argument CIDR=CC adds or replaces a network's country, CIDR=@CC
# gives it only a registered_country, CIDR= removes it.  The file is
# written to OUT.mmdb.tmp and renamed, as geoipupdate does.
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my $city = 0;
if (@ARGV && $ARGV[0] eq '--city') {
	$city = 1;
	shift @ARGV;
}
my $out = shift @ARGV
    or die "usage: $0 [--city] OUT.mmdb [CIDR=CC|CIDR=\@CC|CIDR=]...\n";

my %net = (
	'203.0.113.0/24'  => 'RO',
	'198.51.100.0/24' => 'CN',
	'192.0.2.0/24'    => 'DE',
	'2001:db8::/32'   => 'US',
	'198.18.0.0/15'   => '@NL',
);
for my $arg (@ARGV) {
	my ($cidr, $cc) = $arg =~ m{^([0-9A-Fa-f.:]+/\d+)=(\@?[A-Z]{2})?$}
	    or die "$0: bad mapping '$arg' "
	    . "(want CIDR=CC, CIDR=\@CC or CIDR=)\n";
	if (defined $cc) {
		$net{$cidr} = $cc;
	} else {
		delete $net{$cidr};
	}
}

my %types = (
	city               => 'map',
	continent          => 'map',
	country            => 'map',
	registered_country => 'map',
	names              => 'map',
	code               => 'utf8_string',
	en                 => 'utf8_string',
	iso_code           => 'utf8_string',
	geoname_id         => 'uint32',
);

my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version               => 6,
	record_size              => 24,
	database_type            => $city ? 'GeoIP2-City' : 'GeoIP2-Country',
	languages                => ['en'],
	description              => { en => 'portero test database' },
	remove_reserved_networks => 0,
	map_key_type_callback    => sub { $types{ $_[0] } },
);

for my $cidr (sort keys %net) {
	my $cc = $net{$cidr};
	my %rec;
	if ($cc =~ s/^\@//) {
		$rec{registered_country} = { iso_code => $cc,
		    names => { en => "Country $cc" } };
	} else {
		$rec{country} = { iso_code => $cc,
		    names => { en => "Country $cc" } };
		$rec{registered_country} = { iso_code => $cc,
		    names => { en => "Country $cc" } };
		$rec{continent} = { code => 'EU', names => { en => 'Europe' } };
		$rec{city} = { geoname_id => 1, names => { en => "City $cc" } }
		    if $city;
	}
	$tree->insert_network($cidr, \%rec);
}

my $tmp = "$out.tmp.$$";
open(my $fh, '>:raw', $tmp) or die "$0: $tmp: $!\n";
$tree->write_tree($fh);
close($fh) or die "$0: $tmp: $!\n";
chmod(0644, $tmp);
rename($tmp, $out) or die "$0: rename $tmp $out: $!\n";
