"""omuda.engine"""
