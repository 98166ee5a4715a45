// Package demoapp is the demo workload that Shoal scales: an HTTP and gRPC
// server that names the instance answering each request and models a fixed
// per-instance capacity.
//
// Every "instance" of the local cloud shares one host, so CPU added by
// scaling out is not real capacity. demoapp therefore serves at most
// Capacity requests per second through a virtual single server, queues the
// rest in a bounded queue (so latency grows as on a saturated instance),
// burns only a little real CPU per request, and exports the modelled
// utilisation as demoapp_utilization (0–100) for the agent to scrape.
//
// It must never burn CPU in proportion to its modelled load: on a shared
// host that would couple the "instances" it is meant to keep apart.
package demoapp
