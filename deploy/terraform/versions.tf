terraform {
  # 1.5: check/precondition blocks and the syntax used here.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Only arguments present in both the 5.x and 6.x providers are used.
      version = ">= 5.0, < 7.0"
    }
  }
}
