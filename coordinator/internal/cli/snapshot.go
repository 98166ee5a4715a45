package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

const snapshotChunk = 64 << 10

func snapshotCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "save or restore the cluster state"}
	save := &cobra.Command{
		Use:   "save FILE",
		Short: "write a snapshot of the state to FILE",
		Args:  exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				st, err := c.SaveSnapshot(ctx, &shoalv1.SaveSnapshotRequest{Stale: e.stale})
				if err != nil {
					return err
				}
				// Write beside the target and rename, so FILE is never half a snapshot.
				tmp, err := os.CreateTemp(filepath.Dir(args[0]), ".snapshot-*")
				if err != nil {
					return fmt.Errorf("FILE (%q): %w", args[0], err)
				}
				defer os.Remove(tmp.Name())
				n := 0
				for {
					m, err := st.Recv()
					if err == io.EOF {
						break
					}
					if err != nil {
						tmp.Close()
						return err
					}
					if _, err := tmp.Write(m.Chunk); err != nil {
						tmp.Close()
						return fmt.Errorf("FILE (%q): %w", args[0], err)
					}
					n += len(m.Chunk)
				}
				if err := tmp.Close(); err != nil {
					return err
				}
				if err := os.Rename(tmp.Name(), args[0]); err != nil {
					return fmt.Errorf("FILE (%q): %w", args[0], err)
				}
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), map[string]any{"file": args[0], "bytes": n})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "saved %d bytes to %s\n", n, args[0])
				return nil
			})
		},
	}
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "replace the whole state with a snapshot FILE (through raft)",
		Args:  exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("FILE (%q): %w", args[0], err)
			}
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				st, err := c.RestoreSnapshot(ctx)
				if err != nil {
					return err
				}
				for off := 0; off < len(data); off += snapshotChunk {
					if err := st.Send(&shoalv1.RestoreSnapshotRequest{Chunk: data[off:min(off+snapshotChunk, len(data))]}); err != nil {
						break // the real error comes from CloseAndRecv
					}
				}
				resp, err := st.CloseAndRecv()
				if err != nil {
					return err
				}
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), map[string]any{"file": args[0], "index": resp.Index})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "restored %s at raft index %d\n", args[0], resp.Index)
				return nil
			})
		},
	}
	cmd.AddCommand(save, restore)
	return cmd
}
