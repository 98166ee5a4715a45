// Package console serves the operator console: a few embedded pages at
// /ui/ on a coordinator's --http-addr and one server-sent-event stream per
// page under /ui/api/v1/.
//
// It reads only through the server's ControlService read paths (the
// leader's answer, forwarded like the CLI's; this node's own copy, marked
// stale, when no leader answers), and turns state into JSON only through
// package view. One producer per page kind polls once a second while
// anyone watches and encodes each event once for every open page, so open
// pages cost a write each, not a read each.
//
// It must never put a token in a URL, accept a request without the
// token's policy covering the method it stands for, or emit outside text
// (instance ids, reasons, tags) as markup: the page inserts text with
// textContent only, under a Content-Security-Policy that allows no inline
// script or style.
package console
