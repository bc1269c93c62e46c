/** ResNet-50 on ImageNet-sized inputs (224×224×3, 1000 classes), torchvision's layout. */
import * as Program from "../dsl/Program.ts"
import * as Zoo from "../dsl/zoo.ts"

export default Program.program({
  name: "resnet50-imagenet",
  description: "ResNet-50 (torchvision layout, v1.5 bottlenecks) on 224×224×3 inputs with 1000 outputs",
  models: [Program.model("resnet50", Zoo.resnet50({ outputs: 1000 }), [224, 224, 3])],
})
