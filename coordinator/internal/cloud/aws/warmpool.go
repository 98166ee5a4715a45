package aws

import (
	"context"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

var _ cloud.WarmPools = (*Cloud)(nil)

// maxWarmPoolPages bounds the pages one DescribeWarmPool reads (50, the API's
// most, instances each): a pool is at most the group's MaxSize.
const maxWarmPoolPages = 20

// DescribeWarmPool implements cloud.WarmPools. A group without a warm pool
// answers with no configuration, which is nil here.
func (c *Cloud) DescribeWarmPool(ctx context.Context, group string) (*cloud.WarmPool, error) {
	var wp *cloud.WarmPool
	var token *string
	for range maxWarmPoolPages {
		out, err := c.as.DescribeWarmPool(ctx, &autoscaling.DescribeWarmPoolInput{
			AutoScalingGroupName: sdkaws.String(group), MaxRecords: sdkaws.Int32(50), NextToken: token,
		})
		if err != nil {
			return nil, Translate(OpDescribeWarmPool, err)
		}
		if cfg := out.WarmPoolConfiguration; cfg != nil && wp == nil {
			wp = &cloud.WarmPool{
				Group: group, MinSize: sdkaws.ToInt32(cfg.MinSize), MaxPrepared: sdkaws.ToInt32(cfg.MaxGroupPreparedCapacity),
				PoolState: string(cfg.PoolState), Status: string(cfg.Status),
			}
			if cfg.InstanceReusePolicy != nil {
				wp.ReuseOnScaleIn = sdkaws.ToBool(cfg.InstanceReusePolicy.ReuseOnScaleIn)
			}
		}
		if wp == nil {
			return nil, nil
		}
		for _, i := range out.Instances {
			wp.Instances = append(wp.Instances, cloud.Instance{
				ID: sdkaws.ToString(i.InstanceId), AZ: sdkaws.ToString(i.AvailabilityZone),
				LifecycleState: string(i.LifecycleState), Health: sdkaws.ToString(i.HealthStatus),
				InstanceType: sdkaws.ToString(i.InstanceType),
			})
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	return wp, nil
}

var _ cloud.WarmPoolBootstrap = (*Cloud)(nil)

// PutWarmPool implements cloud.WarmPoolBootstrap.
func (c *Cloud) PutWarmPool(ctx context.Context, spec cloud.WarmPoolSpec) error {
	in := &autoscaling.PutWarmPoolInput{
		AutoScalingGroupName: sdkaws.String(spec.Group), MinSize: sdkaws.Int32(spec.MinSize),
		PoolState:           astypes.WarmPoolState(spec.PoolState),
		InstanceReusePolicy: &astypes.InstanceReusePolicy{ReuseOnScaleIn: sdkaws.Bool(spec.ReuseOnScaleIn)},
	}
	if spec.MaxPrepared > 0 {
		in.MaxGroupPreparedCapacity = sdkaws.Int32(spec.MaxPrepared)
	}
	_, err := c.as.PutWarmPool(ctx, in)
	return Translate(OpPutWarmPool, err)
}
