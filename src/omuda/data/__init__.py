"""omuda.data"""
