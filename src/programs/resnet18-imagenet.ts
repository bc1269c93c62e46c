/** ResNet-18 on ImageNet-sized inputs (224×224×3, 1000 classes), torchvision's layout. */
import * as Program from "../dsl/Program.ts"
import * as Zoo from "../dsl/zoo.ts"

export default Program.program({
  name: "resnet18-imagenet",
  description: "ResNet-18 (torchvision layout) on 224×224×3 inputs with 1000 outputs",
  models: [Program.model("resnet18", Zoo.resnet18({ outputs: 1000 }), [224, 224, 3])],
})
