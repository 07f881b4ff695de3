<?php
# Commonshelf: loaded at the end of LocalSettings.php (kept in the data volume), so what
# the installation decides wins over what the installer wrote. Secrets are read from the
# installation's Swarm secrets at every request and never written to the data volume.
if ( !defined( 'MEDIAWIKI' ) ) {
	exit;
}

function commonshelfSecret( string $name ): string {
	$value = @file_get_contents( "/run/secrets/$name" );
	if ( $value === false || trim( $value ) === '' ) {
		throw new RuntimeException( "The secret $name is missing (/run/secrets/$name)." );
	}
	return trim( $value );
}

function commonshelfSetting( string $name, string $default ): string {
	$value = getenv( $name );
	return ( $value === false || $value === '' ) ? $default : $value;
}

$wgDBserver = commonshelfSetting( 'MW_DB_HOST', 'db' );
$wgDBname = commonshelfSetting( 'MW_DB_NAME', 'mediawiki' );
$wgDBuser = commonshelfSetting( 'MW_DB_USER', 'mediawiki' );
$wgDBpassword = commonshelfSecret( 'db_password' );
$wgSecretKey = commonshelfSecret( 'secret_key' );
$wgUpgradeKey = false; # no web upgrader: the container runs update.php on start

$wgSitename = commonshelfSetting( 'WIKI_NAME', 'My Wiki' );
$wgServer = rtrim( commonshelfSetting( 'SERVER_URL', 'http://mediawiki.localhost' ), '/' );
$wgCanonicalServer = $wgServer;
$wgScriptPath = '';

# Anonymous visitors may read; whether they may edit is the ANONYMOUS_EDITS setting.
$wgGroupPermissions['*']['edit'] = commonshelfSetting( 'ANONYMOUS_EDITS', 'no' ) === 'yes';
$wgGroupPermissions['*']['createpage'] = $wgGroupPermissions['*']['edit'];

# Uploads go to images/ in the data volume.
$wgEnableUploads = true;
$wgUploadDirectory = '/var/lib/mediawiki/images';
$wgUploadPath = '/images';

# Sessions in the database: they survive restarts and are shared during an update.
$wgSessionCacheType = CACHE_DB;

# The stack's proxy forwards the visitor's address; trust it from private networks only.
$wgUsePrivateIPs = false;
$wgCdnServersNoPurge = [ '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16' ];

# No outgoing mail from the container.
$wgEnableEmail = false;
$wgEnableUserEmail = false;

# The operator's own additions, if any, from the data volume.
if ( is_readable( '/var/lib/mediawiki/Settings.local.php' ) ) {
	require '/var/lib/mediawiki/Settings.local.php';
}
