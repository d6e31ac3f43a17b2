// Package deploy holds the container files and cluster manifests; its tests validate them.
package deploy
