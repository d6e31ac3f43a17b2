// Package schemas holds the data the server reads as data, not code: the incident
// categories, the working-day calendars, the visit plans and point rates, and the
// OpenAPI form of the sync protocol. Files are embedded so the binary runs with
// nothing beside it.
package schemas

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/gridkeeper/gridkeeper/pkg/workday"
)

// Files is the embedded schemas directory.
//
//go:embed categories.json capabilities.json visits.json points.json calendar/*.json openapi.yaml
var Files embed.FS

// Calendar is the working-day calendar of the shipped years (calendar/*.json).
func Calendar() (*workday.Calendar, error) {
	files, err := fs.Glob(Files, "calendar/*.json")
	if err != nil {
		return nil, err
	}
	var years []workday.Year
	for _, f := range files {
		data, err := Files.ReadFile(f)
		if err != nil {
			return nil, err
		}
		y, err := workday.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		years = append(years, y)
	}
	return workday.New(years...)
}
