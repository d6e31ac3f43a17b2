// Package schemas holds the data the server reads as data, not code: the incident
// categories, the working-day calendars and the OpenAPI form of the sync protocol.
// Files are embedded so the binary runs with nothing beside it.
package schemas

import "embed"

// Files is the embedded schemas directory.
//
//go:embed categories.json capabilities.json visits.json points.json calendar/*.json openapi.yaml
var Files embed.FS
