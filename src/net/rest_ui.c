/*
 * rest_ui: the status page served at GET /ui — one HTML file with its CSS
 * and JavaScript (src/net/ui.html), compiled in as a string: the make rule
 * of gen/ui.inc turns each line into a C string literal (no other build
 * step, nothing fetched from outside the cluster).  The page polls the
 * node's JSON endpoints (/cluster, /collections) and the other members'
 * /cluster; see the comment at its top.
 */
#include "build.h"

#include "net/rest_impl.h"

const char rest_ui_page[] =
#include "ui.inc"
	;
