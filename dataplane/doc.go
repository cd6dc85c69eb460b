// Package dataplane is ferry's packet path: worker goroutines that read
// batches of frames from their queues and push each batch through the
// stages listed in pipeline.go, one small file per stage.
package dataplane
